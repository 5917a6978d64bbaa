"""A Map iteration sees the context object's `Map.Item` in its ItemSelector only, as in AWS.

Gap closed (moto 5.2.5): moto set `$states.context.Map.Item` (and `$$.Map.Item`) for the whole
iteration, so a state inside an ItemProcessor could read its item from the context object and
pass locally, while on AWS the same expression finds nothing: "You must define parameters from
the Context object in the ItemSelector block of the main Map state, not within the states
included in the ItemProcessor section"
(https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html#contextobject-map).
Here `Map` leaves the context object once ItemSelector (or Parameters) has made the item's input.
"""

from __future__ import annotations

from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
    inline_item_processor_worker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iterator import (
    inline_iterator_worker,
)


def _selector_only(original):
    def eval_input(self, env_frame) -> None:
        original(self, env_frame)
        env_frame.states.context_object.context_object_data.pop("Map", None)

    return eval_input


_INLINE = inline_item_processor_worker.InlineItemProcessorWorker
_ITERATOR = inline_iterator_worker.InlineIteratorWorker
PATCHES = [
    (_INLINE, "_eval_input", _selector_only(_INLINE._eval_input)),
    (_ITERATOR, "_eval_input", _selector_only(_ITERATOR._eval_input)),
]
