"""The embedded default's Celery broker: kombu's filesystem transport, with atomic writes.

kombu's filesystem transport creates a message file in the queue folder and then writes
it; a consumer polling the folder can take the file in between, read zero bytes and crash
the worker with a JSONDecodeError, losing the message (celery/kombu#1551 has the same
symptom). bench/jobs.py hit it within a few hundred messages with
LEPTON_BROKER_POLL_SECONDS=0.01. Here a message is written under a name the consumer
ignores and renamed into place once complete, so a consumer sees whole messages only.
Used through CELERY_BROKER_TRANSPORT in lepton/settings.py when REDIS_URL is not set.
"""

import os
import time
import uuid

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put `payload` onto `queue`: write to a hidden temporary name, then rename into place."""
        # Consumers take files in name order: a fixed-width wall-clock stamp in nanoseconds keeps
        # messages first in, first out (kombu's millisecond stamp ties and then sorts by uuid).
        name = f"{time.time_ns():020d}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # The consumer takes files named "<stamp>_<uuid>.<queue>.msg"; ".<name>.part" never matches.
        temporary = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(temporary, "wb") as out:
                out.write(str_to_bytes(dumps(payload)))
            os.replace(temporary, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
