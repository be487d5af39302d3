"""The code lists every client validates against."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from service.auth.access import requires
from service.auth.models import Role
from service.http import Blueprint
from service.taxonomy.schemas import TaxonomyOut
from service.taxonomy.service import load_taxonomy

blp = Blueprint("taxonomy", __name__, url_prefix="/v1/taxonomy", description="Versioned code lists with labels")


@blp.route("")
class Taxonomy(MethodView):
    @blp.doc(operationId="getTaxonomy")
    @blp.response(200, TaxonomyOut)
    @requires(*Role)
    def get(self) -> dict[str, Any]:
        """Get the code lists

        Incident kinds, exploitation types, age bands, indicators (with the kinds they apply to), meldcode steps
        and follow-up bodies, each with an English and a Dutch label. Every incident records the version it was
        validated against.
        """
        return load_taxonomy().as_document()
