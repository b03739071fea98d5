"""A Flask app staged from pixi.lock: every package is the one the lock names."""
import platform

import flask
from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def versions():
    return jsonify(python=platform.python_version(), flask=flask.__version__)
