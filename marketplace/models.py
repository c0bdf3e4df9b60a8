"""Every feature's models, imported so that Base.metadata knows all tables (for Alembic)."""

from marketplace.accounts import models as accounts_models  # noqa: F401
from marketplace.artists import models as artists_models  # noqa: F401
from marketplace.buyers import models as buyers_models  # noqa: F401
from marketplace.catalog import models as catalog_models  # noqa: F401
from marketplace.certificates import models as certificates_models  # noqa: F401
from marketplace.compliance import models as compliance_models  # noqa: F401
from marketplace.db import Base
from marketplace.delivery import models as delivery_models  # noqa: F401
from marketplace.governance import models as governance_models  # noqa: F401
from marketplace.jobs import models as jobs_models  # noqa: F401
from marketplace.ledger import models as ledger_models  # noqa: F401
from marketplace.optout import models as optout_models  # noqa: F401
from marketplace.payouts import models as payouts_models  # noqa: F401
from marketplace.reservations import models as reservations_models  # noqa: F401
from marketplace.webhooks import models as webhooks_models  # noqa: F401

metadata = Base.metadata
