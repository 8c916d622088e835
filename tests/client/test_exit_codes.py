"""bfxctl's exit codes are tied to the wire's error types (client_wire), the client library's error classes and
the README's exit-code table: an error type added anywhere without a code and a documented row fails here."""

from __future__ import annotations

from pathlib import Path

from bfxd import ctl
from bfxd.client import errors
from bfxd.protocol import client_wire


class TestExitCodeTable:
    """bfxctl's exit codes are tied to the wire's error types: a type added to client_wire without a code in
    ctl.ERROR_EXIT and in the README's table fails here."""

    @staticmethod
    def wire_error_types() -> set[str]:
        # The error types are the module's constants whose value is their own name in lower case.
        return {v for k, v in vars(client_wire).items() if k.isupper() and isinstance(v, str) and v == k.lower()}

    @staticmethod
    def readme_rows() -> dict[int, str]:
        readme = (Path(__file__).parent.parent.parent / "README.md").read_text()
        section = readme[readme.index("Exit codes of `bfxctl`"):]
        section = section[: section.index("\n\n", section.index("| code |"))]
        return {int(cells[1]): cells[2] for line in section.splitlines()
                if len(cells := line.split("|")) > 3 and cells[1].strip().isdigit()}

    def test_the_scan_finds_the_known_types(self) -> None:
        """The constant scan sees today's types (so an empty scan cannot pass the tests below)."""
        assert {"bad_request", "unknown_op", "busy", "timeout", "exchange", "not_active"} <= self.wire_error_types()
        assert set(self.readme_rows()) == {0, 1, 2, 3, 4, 5}

    def test_every_wire_error_type_has_a_documented_exit_code(self) -> None:
        """Each error type of client_wire has an exit code, and the README's row for that code names it."""
        rows = self.readme_rows()
        missing = sorted(t for t in self.wire_error_types() if t not in ctl.ERROR_EXIT)
        assert not missing, f"error types without a bfxctl exit code: {missing}"
        undocumented = sorted(t for t in self.wire_error_types() if f"`{t}`" not in rows[ctl.ERROR_EXIT[t]])
        assert not undocumented, f"error types missing from the README's exit-code rows: {undocumented}"

    def test_every_client_error_type_has_a_documented_exit_code(self) -> None:
        """The client library's own error types (and the contract's new ones) are mapped and documented too."""
        rows = self.readme_rows()
        for kind in (*errors.WIRE_ERRORS, *errors.CLIENT_ERRORS):
            assert kind in ctl.ERROR_EXIT, kind
            assert f"`{kind}`" in rows[ctl.ERROR_EXIT[kind]], kind

    def test_the_library_has_a_class_for_every_wire_error_type(self) -> None:
        """bfxd.client raises one class per wire error type."""
        assert self.wire_error_types() <= set(errors.WIRE_ERRORS)
