"""Auditor exports of the pseudonymised record, negotiated by Accept."""

from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Response, current_app, request, stream_with_context
from flask.views import MethodView

from service import clock
from service.audit.recording import audited, touched
from service.audit.service import EventType
from service.auth.access import current_caller, requires
from service.auth.models import Role
from service.db import db
from service.exports import service
from service.exports.schemas import ExportArgs, ExportRow
from service.http import Blueprint, produces
from service.periods import Period
from service.spreadsheet import CSV

blp = Blueprint("exports", __name__, url_prefix="/v1/exports",
                description="Pseudonymised incident exports (auditors), streamed as CSV or NDJSON")
NDJSON = "application/x-ndjson"
HEADER = {"schema": {"type": "string"}}


RESPONSE = {"200": {
    "description": "The rows, streamed. NDJSON ends with a {\"metadata\": {...}} line; CSV has a header line and "
                   "joins lists with ';' inside their quoted cell. Both carry the filters, generation time, row "
                   "count and the export and pseudonym key versions (exported pseudonyms compare only between "
                   "exports of the same versions) in headers.",
    "headers": {"Export-Generated-At": HEADER, "Export-Row-Count": HEADER, "Export-Filters": HEADER,
                "Export-Key-Version": HEADER, "Pseudonym-Key-Version": HEADER},
    "content": {NDJSON: {"schema": ExportRow}, CSV: {"schema": {"type": "string", "description": (
        "RFC 4180 CSV with a UTF-8 byte order mark, every cell quoted and delimited by the `delimiter` parameter "
        "(`;` for Excel with Dutch settings), the columns of ExportRow in this order: " + ", ".join(service.COLUMNS)
        + ". No text cell starts with = + - @, tab or CR (a leading ' is added).")}}},
}}


@blp.route("/incidents")
class IncidentExport(MethodView):
    @blp.arguments(ExportArgs, location="query", as_kwargs=True)
    @blp.doc(responses=RESPONSE)
    @requires(Role.AUDITOR)
    @audited(EventType.EXPORT)
    @produces(NDJSON, CSV)
    def get(self, from_: Period, to: Period, delimiter: str) -> Response:
        """Export incidents

        Every incident of the institutions in the auditor's scope that occurred in the periods `from` to `to`,
        as recorded when the export started (retracted ones included, marked). Negotiated by `Accept`.
        """
        first, last, generated_at = from_, to, clock.now()
        stmt = service.exported_incidents(current_caller(), first, last, generated_at)
        # Count and rows come from one snapshot, so the count logged (and committed with the request) is the
        # number of rows that stream afterwards.
        reader = db.long_read()
        try:
            count = service.count_rows(reader, stmt)
        except BaseException:
            reader.close()
            raise
        touched(count=count, filters={"from": first, "to": last})
        filters = {"from": first.label, "to": last.label}
        settings = current_app.extensions["settings"]
        exports, pseudonyms = settings.export_keys, settings.pseudonym_keys
        # Exported pseudonyms compare between two exports only when both name the same versions (and no re-keying
        # run was under way: each resident moves whole and an export reads one snapshot, so within one export a
        # resident is one value, but rows not yet moved show their older pseudonym re-keyed).
        metadata = {"generatedAt": generated_at.isoformat(), "filters": filters,
                    "exportKeyVersion": exports.active, "pseudonymKeyVersion": pseudonyms.active}
        key = service.export_key(exports[exports.active], exports.active)
        media = request.accept_mimetypes.best_match([NDJSON, CSV]) or NDJSON

        def rows() -> Iterator[str]:
            try:
                yield from (service.ndjson(reader, stmt, key, metadata) if media == NDJSON
                            else service.csv_lines(reader, stmt, key, delimiter))
            finally:
                reader.close()

        return Response(stream_with_context(rows()), mimetype=media, headers={
            "Export-Generated-At": metadata["generatedAt"], "Export-Row-Count": str(count),
            "Export-Filters": json.dumps(filters, separators=(",", ":")),
            "Export-Key-Version": str(exports.active), "Pseudonym-Key-Version": str(pseudonyms.active),
            "Content-Disposition": f'attachment; filename="incidents-{first.label}-{last.label}.'
                                   f'{"ndjson" if media == NDJSON else "csv"}"'})
