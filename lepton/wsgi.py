"""The WSGI application: Django's, inside the layers LEPTON_WSGI_LAYERS names (outermost first).

A layer answers some requests itself before Django (models_repo.api.fastpath: repeat
predictions) and hands every other one on unchanged.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lepton.settings")
application = get_wsgi_application()


def _wrapped(app):
    from django.conf import settings
    from django.utils.module_loading import import_string

    for path in reversed(settings.LEPTON_WSGI_LAYERS):
        app = import_string(path)(app)
    return app


application = _wrapped(application)
