"""What the simulator says on the wire, in one place, with where each code and text comes from.

Bitfinex asks clients to rely on codes, never on texts ("Only rely on 'CODE' for 'info' events"; "Do not parse text
descriptions, use only codes"). Codes below follow the docs (docs.bitfinex.com "General", "Abbreviation Glossary").
Texts are the ones the exchange was seen to send where that is known; where the docs are silent the text is our
own choice, marked CHOSEN. The simulator's README section in the hand-back report lists the same table.
"""

from __future__ import annotations

# ---- info events (docs "General" > Info Codes; the texts are the docs' descriptions) -----------------------
INFO_TEXTS = {
    20051: "Stop/Restart Websocket Server (please reconnect)",
    20060: "Entering in Maintenance mode. Please pause any activity and resume after receiving the info message "
           "20061 (it should take 120 seconds at most).",
    20061: "Maintenance ended. You can resume normal activity. It is advised to unsubscribe/subscribe again all "
           "channels.",
}
INFO_RESTART, INFO_MAINTENANCE_START, INFO_MAINTENANCE_END = 20051, 20060, 20061

# ---- auth answers: (code, msg) ---------------------------------------------------------------------------
# Unknown key: observed on the wire (bitfinex-api-node #89, bitfinex-api-rb #45).
AUTH_INVALID_KEY = (10100, "apikey: invalid")
# Wrong secret: the exchange's observed text (bitfinex-api-node #347; bfx-report code matches it), with code 10100
# as seen alongside it. The glossary also defines 10112 ERR_AUTH_SIG; clients must treat both as "auth failed".
AUTH_BAD_SIGNATURE = (10100, "apikey: digest invalid")
# Nonce not above the last one for this key (glossary 10114 ERR_AUTH_NONCE; text observed, #347).
AUTH_BAD_NONCE = (10114, "nonce: small")
# authPayload is not "AUTH" + authNonce, or the nonce is not a number (glossary 10111 ERR_AUTH_PAYLOAD). CHOSEN text.
AUTH_BAD_PAYLOAD = (10111, "payload: invalid")
# A second auth on an already authenticated connection (glossary 10100 ERR_AUTH_FAIL). CHOSEN text.
AUTH_DUPLICATE = (10100, "auth: dup")

# ---- error events: (code, msg) ---------------------------------------------------------------------------
# An input before auth: observed (bitfinex-api-node #77, bitfinex-client-websocket #37).
NOT_AUTHENTICATED = (10100, "auth: invalid")
# An input during maintenance: glossary 11000 ERR_READY "Not ready, try again later".
NOT_READY = (11000, "Not ready, try again later")
# Anything the simulator cannot read: docs "General" > Generic Error Codes, 10000 "Unknown event".
UNKNOWN_EVENT = (10000, "Unknown event")
# Over the input rate limit. The docs publish no websocket input figure; the only documented rate-limit text is
# REST's "ERR_RATE_LIMIT", and the glossary has no rate-limit code, so: 10001 ERR_GENERIC. CHOSEN. The connection
# is then closed with RATE_LIMIT_CLOSE.
RATE_LIMITED = (10001, "ERR_RATE_LIMIT")
RATE_LIMIT_CLOSE = (1008, "ERR_RATE_LIMIT")  # 1008 = policy violation (RFC 6455)
# A calc input of more than 30 requests (docs changelog: "allows up to 30 calculations per batch. If the client
# sends too many [...] it will receive an error"): 10001 ERR_GENERIC, text CHOSEN.
CALC_TOO_MANY = (10001, "calc: too many calculations in one batch (at most 30)")
# Public channels (docs "General": subscription / unsubscription error codes).
UNKNOWN_CHANNEL = (10302, "Unknown channel")
NOT_SUBSCRIBED = (10401, "Not subscribed")
PUBLIC_CHANNELS = frozenset({"ticker", "trades", "book", "candles", "status"})

# ---- notification texts ----------------------------------------------------------------------------------
# Docs "Cancel Offer" (ws-auth-input-offer-cancel) example.
CANCEL_SUBMITTED = "Submitted for cancellation; waiting for confirmation (ID: {id})."
# foc for an id that is unknown or no longer active: undocumented. CHOSEN (the team's frame corpus uses it).
OFFER_NOT_FOUND = "Offer not found"
# foc whose payload has no usable id: the exchange's text for oc-req of an invalid id (bitfinex-api-node #169,
# from a Bitfinex developer). CHOSEN by analogy.
ID_INVALID = "id: invalid"
# fon-req SUCCESS: the shape of the team's frame corpus (n-fon-req-success.json). The rate is shown in percent.
OFFER_SUBMITTED = "Submitting funding offer of {amount} {currency} at {rate:.4f} for {period} days."
# fon-req ERROR texts: CHOSEN (undocumented). The minimum is 150 USD or a fixed equivalent (market.py).
INVALID_AMOUNT = "Invalid offer: incorrect amount"
AMOUNT_BELOW_MINIMUM = "Invalid offer: incorrect amount, minimum is 150 dollar or equivalent in USD"
INVALID_PERIOD = "Invalid offer: period must be between 2 and 120 days"
INVALID_RATE = "Invalid offer: incorrect rate"
INVALID_TYPE = "Invalid offer: unknown type"
INVALID_SYMBOL = "Invalid offer: unknown symbol"
# Offer statuses after an execution (docs "Funding Offers": compound statuses such as "EXECUTED at 0.02% (500.0)").
EXECUTED = "EXECUTED at {rate:.4f}% ({amount})"
PARTIALLY_FILLED = "PARTIALLY FILLED at {rate:.4f}% ({amount})"
