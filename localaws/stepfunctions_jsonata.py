"""JSONata states and the ASL parser, as Step Functions runs them (moto 5.2.5, patched).

Gaps closed:
- the JSONata evaluator is left unset in moto (LocalStack's ran in a JVM): here jsonata-python;
- a JSONata evaluation error ended the execution with `States.Runtime`; Step Functions raises
  `States.QueryEvaluationError`, which Retry and Catch see
  (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html);
- `$uuid()` and `$hash(value, algorithm)`, two of the functions Step Functions adds to JSONata
  (https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html), returned the
  string "Function ... is currently not supported": here a v4 UUID and the hex digest (MD5,
  SHA-1, SHA-256, SHA-384, SHA-512);
- the parser kept its query-language scope in a class attribute shared by every parse: a
  definition refused inside a JSONata scope left that scope behind, and every later JSONPath
  definition was refused until restart. Here each definition starts with an empty scope.
- every expression was evaluated as text with every variable and `$states` prepended as JSON
  literals (strings unescaped, so a quote or newline in a value broke it), and evaluated again
  to tell undefined from null: a workflow holding its plan in a variable spent a minute per run
  parsing the same JSON. Here the expression alone is parsed and the variables are bound as
  values; undefined and null stay apart without a second evaluation.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import jsonata
from jsonata.utils import Utils
from moto.stepfunctions.parser.api import EvaluationFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.string import string_expression
from moto.stepfunctions.parser.asl.component.intrinsic import jsonata as intrinsic_jsonata
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.jsonata import jsonata as moto_jsonata
from moto.stepfunctions.parser.asl.jsonata import validations
from moto.stepfunctions.parser.asl.jsonata.jsonata import (
    JSONataException,
    extract_jsonata_variable_references,
)
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor


def _state_name(env) -> str:
    """The state evaluating: EvaluationFailed names it (a required member in the model)."""
    state = env.states.context_object.context_object_data.get("State") or {}
    return state.get("Name", "")


def _query_errors_as_states_error(original):
    """Wrap a JSONata evaluation so that its errors are States.QueryEvaluationError."""

    def eval_body(self, env) -> None:
        try:
            original(self, env)
        except FailureEventException as failure:
            details = failure.failure_event.event_details or {}
            evaluation = details.get("evaluationFailedEventDetails")
            if evaluation is not None and not evaluation.get("state"):
                evaluation["state"] = _state_name(env)  # moto's "returned nothing" omits it
            raise
        except JSONataException as err:
            error = StatesErrorNameType.StatesQueryEvaluationError.to_name()
            cause = (
                f"The JSONata expression '{self.literal_value}' threw an error during "
                f"evaluation. {err.details}"
            )
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(StatesErrorNameType.StatesQueryEvaluationError),
                    event_type=HistoryEventType.EvaluationFailed,
                    event_details=EventDetails(
                        evaluationFailedEventDetails=EvaluationFailedEventDetails(
                            error=error, cause=cause, state=_state_name(env)
                        )
                    ),
                )
            ) from err

    return eval_body


def jsonata_hash(value: Any, algorithm: str) -> str:
    """Step Functions' `$hash(value, algorithm)`: the hex digest of the string."""
    algorithms = {
        "MD5": "md5",
        "SHA-1": "sha1",
        "SHA-256": "sha256",
        "SHA-384": "sha384",
        "SHA-512": "sha512",
    }
    if algorithm not in algorithms:
        raise ValueError(f"$hash: unsupported algorithm {algorithm!r}; one of {list(algorithms)}")
    return hashlib.new(algorithms[algorithm], str(value).encode()).hexdigest()


# Step Functions' own JSONata functions that jsonata-python registers natively (eval_jsonata):
# moto's placeholders must not shadow them.
JSONATA_FUNCTIONS = {"uuid": lambda: str(uuid.uuid4()), "hash": jsonata_hash}
_DECLARATIONS = {
    name: declaration
    for name, declaration in intrinsic_jsonata._DECLARATION_BY_VARIABLE_REFERENCE.items()
    if name.lstrip("$") not in JSONATA_FUNCTIONS
}


# --- parser scope ------------------------------------------------------------------------------


def _visit_state_machine(self: Preprocessor, ctx):
    self._query_language_per_scope = []  # per parse, not shared by every Preprocessor
    return _original_visit_state_machine(self, ctx)


_original_visit_state_machine = Preprocessor.visitState_machine


def _compiled(expression: str) -> jsonata.Jsonata:
    """The expression parsed, with Step Functions' own functions registered."""
    compiled = jsonata.Jsonata(expression)
    for name, function in JSONATA_FUNCTIONS.items():
        compiled.register_lambda(name, function)
    return compiled


def eval_jsonata(expression: str) -> Any:
    """Evaluate with jsonata-python and Step Functions' functions; errors as moto expects them."""
    try:
        return _compiled(expression).evaluate(None)
    except Exception as err:  # States.QueryEvaluationError, by the wrapper above
        raise JSONataException("UNKNOWN", str(err)) from err


def _bound_value(value: Any) -> Any:
    """A variable's value as jsonata-python reads it: None alone would mean undefined."""
    return Utils.NULL_VALUE if value is None else value


def evaluate_bound(expression: str, env) -> Any:
    """The expression with `$states` and the variables in scope bound as values.

    Returns jsonata-python's result with nulls kept as `Utils.NULL_VALUE` (None is undefined)."""
    functions = intrinsic_jsonata.get_intrinsic_functions_declarations(
        variable_references=extract_jsonata_variable_references(expression)
    )
    store = env.variable_store
    bindings = {**store._outer_scope, **store._inner_scope}
    bindings = {name: _bound_value(value) for name, value in bindings.items()}
    bindings["states"] = env.states._states_data
    try:
        compiled = _compiled(f"({functions}{expression})" if functions else expression)
        compiled.set_output_convert_nulls(False)
        return compiled.evaluate(None, bindings)
    except Exception as err:  # States.QueryEvaluationError, by the wrapper above
        raise JSONataException("UNKNOWN", str(err)) from err


def _string_jsonata_eval_body(self: string_expression.StringJSONata, env) -> None:
    result = evaluate_bound(self.expression, env)
    if result is None:  # undefined: the one check moto made by evaluating again
        validations.validate_jsonata_expression_output(env, self.expression, "$undefined", None)
    env.stack.append(Utils.convert_nulls(result))


PATCHES = [
    (moto_jsonata, "_eval_jsonata", eval_jsonata),
    (
        string_expression.StringJSONata,
        "_eval_body",
        _query_errors_as_states_error(_string_jsonata_eval_body),
    ),
    (
        string_expression.StringVariableSample,
        "_eval_body",
        _query_errors_as_states_error(string_expression.StringVariableSample._eval_body),
    ),
    (intrinsic_jsonata, "_DECLARATION_BY_VARIABLE_REFERENCE", _DECLARATIONS),
    (Preprocessor, "visitState_machine", _visit_state_machine),
]
