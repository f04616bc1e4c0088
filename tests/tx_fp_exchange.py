"""A python-threatexchange extension for the tests: a local file whose every signal is a known
false positive (opinion NEGATIVE_CLASS), so that its own CLI writes such entries into exports.

python-threatexchange's local-file exchange marks every signal INVESTIGATION_SEED and its
``label`` command cannot record a false positive there; an exchange of its own kind, loaded the
way its CLI loads extensions (``threatexchange config extensions add``), can.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from threatexchange.exchanges import fetch_state as state
from threatexchange.exchanges.impl.file_api import LocalFileSignalExchangeAPI
from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest


@dataclass
class FalsePositiveMetadata(state.FetchedSignalMetadata):
    def get_as_opinions(self) -> t.Sequence[state.SignalOpinion]:
        return [state.SignalOpinion(False, state.SignalOpinionCategory.NEGATIVE_CLASS, set())]


class FalsePositiveFileSignalExchangeAPI(LocalFileSignalExchangeAPI):
    @classmethod
    def get_name(cls) -> str:
        return "false_positive_file"

    @staticmethod
    def get_record_cls():
        return FalsePositiveMetadata

    def fetch_iter(self, supported_signal_types, checkpoint):
        for delta in super().fetch_iter(supported_signal_types, checkpoint):
            yield state.FetchDelta(
                {k: FalsePositiveMetadata() for k in delta.updates}, delta.checkpoint
            )


TX_MANIFEST = ThreatExchangeExtensionManifest(apis=(FalsePositiveFileSignalExchangeAPI,))
