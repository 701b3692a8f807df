"""An app of only the operations parts (logging and metrics hooks, the operations blueprint), for the
tests that start whole processes: the full app takes tens of seconds to import on a loaded machine
(scikit-learn), and several processes of it would make those tests as slow as the rest together."""

from flask import Flask

from loyalty.config import DefaultConfig
from loyalty.logs import register_logging
from loyalty.metrics import register_metrics
from loyalty.operations import operations


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.from_object(DefaultConfig)
    app.config.update(LOG_LEVEL="WARNING")
    register_logging(app)
    register_metrics(app)
    app.register_blueprint(operations)
    return app
