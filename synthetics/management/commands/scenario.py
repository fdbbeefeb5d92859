"""Scenarios as files (services.scenarios): `scenario export [-o FILE] [--format json|yaml]`,
`scenario import FILE [--dry-run]`, `scenario schema`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import CommandError
from django.utils import timezone

from synthetics.management.cli import SyntheticsCommand
from synthetics.services.scenarios import (
    SCENARIO_MAX_BYTES,
    SCHEMA,
    ScenarioInvalid,
    ScenarioUnreadable,
    scenario_dumps,
    scenario_export,
    scenario_import,
    scenario_loads,
)


class Command(SyntheticsCommand):
    help = (
        "Scenarios as files: `export` writes the whole configuration (settings, journeys with "
        "scenes and funnel weights, mindblock types, rhythm profiles, personas, incidents) as JSON "
        "or YAML; `import FILE` validates one against the published JSON Schema and the models' "
        "rules, lists what would change (--dry-run) and applies it in one transaction or not at "
        "all; `schema` prints the JSON Schema."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="export|import|schema"
        )
        export = actions.add_parser("export", help="write the configuration")
        export.add_argument("-o", "--output", help="a file (default: standard output)")
        export.add_argument("--format", choices=["json", "yaml"], default="json")
        load = actions.add_parser("import", help="make the configuration match a file")
        load.add_argument("file", help="a JSON or YAML scenario; - for standard input")
        load.add_argument("--dry-run", action="store_true", help="only list what would change")
        actions.add_parser("schema", help="print the scenario JSON Schema")

    def handle(self, *args, action, **options):
        if action == "schema":
            self.stdout.write(json.dumps(SCHEMA, indent=2))
        elif action == "export":
            text = scenario_dumps(scenario_export(), fmt=options["format"])
            if options["output"]:
                Path(options["output"]).write_text(text, encoding="utf-8")
                self.stderr.write(f"scenario: written to {options['output']}")
            else:
                self.stdout.write(text, ending="")
        else:
            source = options["file"]
            try:
                data = _read(source)
            except OSError as error:
                raise CommandError(f"scenario: cannot read {source}: {error.strerror}") from None
            try:
                plan = scenario_import(
                    scenario_loads(data), now=timezone.now(), dry_run=options["dry_run"]
                )
            except ScenarioUnreadable as unreadable:  # one line: its size, encoding or nesting
                name = "standard input" if source == "-" else source
                raise CommandError(f"scenario: {name}: {unreadable.message}") from None
            except ScenarioInvalid as invalid:
                raise CommandError(f"scenario: {invalid.message}") from None
            verb = "would change" if options["dry_run"] else "changed"
            if not plan.changes:
                self.stdout.write("scenario: nothing to change: the configuration is the file's")
                return
            for line in plan.changes:
                self.stdout.write(f"  {line}")
            count = len(plan.changes)
            self.stdout.write(f"scenario: {verb} {count} thing{'' if count == 1 else 's'}")


def _read(source: str) -> bytes:
    """The file's bytes, at most one more than a scenario can be (scenario_loads says it is larger)."""
    if source == "-":
        return sys.stdin.buffer.read(SCENARIO_MAX_BYTES + 1)
    with Path(source).open("rb") as file:
        return file.read(SCENARIO_MAX_BYTES + 1)
