"""Write ``docker/.env`` from ``docker/.env.example`` with fresh random secrets (``make docker-env``).

Every variable whose name holds SECRET, TOKEN, PASSWORD or KEY gets a new random value (a Fernet key for
``AIRFLOW__CORE__FERNET_KEY``, what ``Fernet.generate_key()`` returns); the others, the URLs, keep the example's.
The sandbox and the Airflow connections read the same variables, so they still agree. An existing file is
never overwritten: its secrets encrypt what the metadata database already holds. Standard library only, so
it runs before any environment is set up.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|KEY")
ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")


def fresh_secret(name: str) -> str:
    """A new random value for the variable ``name``, in the form its consumer expects.

    :param name: the variable's name.
    """
    if name.endswith("FERNET_KEY"):
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    if "MAILCHIMP" in name:  # Mailchimp keys end with their data center
        return f"{secrets.token_hex(16)}-us1"
    return secrets.token_hex(32)


def render(example: str) -> str:
    """The example file's text with a fresh value for every secret; comments and other lines kept.

    :param example: the text of ``.env.example``.
    """
    lines = []
    for line in example.splitlines():
        match = ASSIGNMENT.match(line)
        if match and SECRET_NAME.search(match["name"]):
            line = f"{match['name']}={fresh_secret(match['name'])}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", type=Path, default=HERE / ".env.example", help="default: %(default)s")
    parser.add_argument("--output", type=Path, default=HERE / ".env", help="default: %(default)s")
    args = parser.parse_args(argv)
    if args.output.exists():
        print(f"{args.output} exists; not overwritten (delete it first to start with new secrets, and the "
              "volumes with it: the metadata database is encrypted with the old ones)", file=sys.stderr)
        return 1
    args.output.write_text(render(args.example.read_text(encoding="utf-8")), encoding="utf-8")
    args.output.chmod(0o600)
    print(f"wrote {args.output} with fresh secrets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
