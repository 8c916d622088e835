"""The audit trail as a product: the hash chain every JSON log line carries (``chain``), and the ``bfxd audit``
commands that check it (``verify``) and tell the story of an offer, a request or a client (``show``)."""
