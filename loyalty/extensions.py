"""Unbound extension instances, initialised by the factory (`loyalty.create_app`)."""

from flask_babel import Babel
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

from loyalty.db import Base, SQLAlchemy
from loyalty.openapi import ProblemApi
from loyalty.rate_limits import Limiter  # also registers the "loyalty-memory://" counters

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=get_remote_address)
api = ProblemApi()
