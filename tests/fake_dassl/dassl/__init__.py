"""A minimal stand-in for Dassl (KaiyangZhou/Dassl.pytorch), written for the tests of ``promptengine.dassl_plugin``.

It implements only the API surface listed in ``../README.md``, with Dassl's documented behaviour, so that the real
package can be put in its place.
"""
