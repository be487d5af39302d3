"""Imports every domain's tables so that Base.metadata is complete (Alembic and the schema test need it)."""


def load_all_models() -> None:
    from service import ratelimit as _ratelimit  # noqa: F401 (the shared rate-limit counts)
    from service.audit import models as _audit  # noqa: F401
    from service.auth import models as _auth  # noqa: F401
    from service.guidance import models as _guidance  # noqa: F401
    from service.incidents import models as _incidents  # noqa: F401
    from service.registry import models as _registry  # noqa: F401
    from service.stats import models as _stats  # noqa: F401
