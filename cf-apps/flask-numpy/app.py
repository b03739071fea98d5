"""A Flask web app that answers with statistics computed by numpy."""
import os

import numpy as np
from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def stats():
    samples = np.array([1.5, 2.5, 3.5, 4.5])
    return jsonify(numpy=np.__version__, mean=float(samples.mean()), total=float(samples.sum()))


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
