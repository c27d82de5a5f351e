"""WSGI entry point for gunicorn: `gunicorn 'mask_r_cnn.wsgi:application()'`.

A factory rather than a module-level app, so importing this module loads nothing; gunicorn calls
it once in each worker, after the fork, which loads the model once per worker.
"""

from __future__ import annotations

from flask import Flask

from .logs import configure_logging
from .predictor import create_app
from .settings import ServeSettings


def application() -> Flask:
    """Read the serving settings, load the model and return the Flask app."""
    configure_logging(with_pid=True)
    return create_app(ServeSettings.from_environ())
