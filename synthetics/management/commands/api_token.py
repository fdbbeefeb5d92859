"""Create, show or rotate a user's API token."""

from synthetics.management.cli import SyntheticsCommand
from synthetics.services.tokens import api_token_issue


class Command(SyntheticsCommand):
    help = (
        "Print the API token of a user (creating one if needed) for `Authorization: Bearer <token>`: "
        "the token alone on stdout, a status line on stderr. "
        "--rotate replaces it: the old token stops working at once."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="an active, non-synthetic user")
        parser.add_argument("--rotate", action="store_true", help="replace the existing token")

    def handle(self, *args, username, rotate, **options):
        key, created = api_token_issue(username=username, rotate=rotate)
        # Only the token on stdout, so `TOKEN=$(manage.py api_token admin)` captures it alone; what
        # happened goes to stderr, where a terminal still shows it.
        self.stdout.write(key)
        verb = "created" if created else "existing"
        self.stderr.write(f"api_token: {verb} token for {username!r}.", self.style.SUCCESS)
