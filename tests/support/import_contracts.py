"""An import-linter contract type for what its built-in ones cannot say: that a package imports
certain names of an external package. Grimp sees `flask` as one module, so the `forbidden` contract
can forbid Flask as a whole but not `flask.request` alone, and domain packages may use Flask's
`current_app` (configuration) while they must never read the request.

Used by pyproject.toml ([tool.importlinter] contract_types); run by `lint-imports` in scripts/test.
"""

import re

from importlinter import Contract, ContractCheck, fields, output

FROM_IMPORT = re.compile(r"^from\s+([\w.]+)\s+import\s+\(?([^)#]*)")


def _imported_names(line: str, package: str) -> set[str]:
    """{"flask.request", ...} of a `from flask import a, b as c` line; empty for `import flask`."""
    match = FROM_IMPORT.match(line)
    if not match:
        return set()
    return {f"{package}.{part.split(' as ')[0].strip()}" for part in match.group(2).split(",")}


class ForbiddenNamesContract(Contract):
    """Modules of `source_modules` may not import any of `forbidden_names` ("flask.request")."""

    type_name = "forbidden_names"

    source_modules = fields.ListField(subfield=fields.ModuleField())
    forbidden_names = fields.ListField(subfield=fields.StringField())

    def check(self, graph, verbose: bool) -> ContractCheck:
        forbidden = set(self.forbidden_names)
        packages = {name.rpartition(".")[0] for name in forbidden}
        found = []
        for source in self.source_modules:
            for module in sorted({source.name, *graph.find_descendants(source.name)}):
                for package in packages & graph.find_modules_directly_imported_by(module):
                    for detail in graph.get_import_details(importer=module, imported=package):
                        for name in sorted(_imported_names(detail["line_contents"], package) & forbidden):
                            found.append((module, name, detail["line_number"]))
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for module, name, line in check.metadata["found"]:
            output.print_error(f"{module} imports {name} (l.{line})")
            output.new_line()
