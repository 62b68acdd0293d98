"""The review queue web page (server-rendered, mounted on the BentoML service at /queue)."""

from serving.web.app import create_web_app

__all__ = ["create_web_app"]
