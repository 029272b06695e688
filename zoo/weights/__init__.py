"""Weights: manifest, verified resolution, weight transfer and converters.

The manifest (records of every published file), verified resolution from the
package, the cache and the pinned Hub, weight transfer between models, and converters
from other frameworks' formats.

Modules: :mod:`~zoo.weights.manifest`, :mod:`~zoo.weights.records`,
:mod:`~zoo.weights.resolve`, :mod:`~zoo.weights.adapt`, :mod:`~zoo.weights.converters`.
Importing this package imports nothing else.
"""
