"""What the operator declares per agent for after the call, and the one strict tool built from it.

The declaration is bounded (fields, choices, descriptions), so the tool schema sent to the model
and the values stored on a call record are bounded too. The same declaration yields the strict
tool schema the model is held to and the pydantic model its arguments are checked against, so a
server that ignores `"strict": true` still cannot get a wrong kind stored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    field_validator,
    model_validator,
)

from db.calls import POST_CALL_FIELD_PATTERN
from tools.schema import strict_parameters

FIELD_NAME_PATTERN = POST_CALL_FIELD_PATTERN
"""A declared field's name: a lower-case identifier (it becomes a key on the record and in filters)."""
MAX_POST_CALL_FIELDS = 12
"""Bound on the fields one agent declares."""
MAX_CHOICES = 16
"""Bound on the choices of one `choice` field."""
MAX_CHOICE_CHARS = 64
"""Bound on one choice's text."""
MAX_DESCRIPTION_CHARS = 300
"""Bound on a field's description (sent to the model in the tool schema)."""
MAX_TEXT_VALUE_CHARS = 500
"""A `text` field's value is cut to this many characters before it is stored."""
MAX_SUMMARY_CHARS = 2000
"""The summary is cut to this many characters before it is stored."""
TOOL_NAME = "record_call_fields"
"""The one tool the post-call request offers (and requires)."""

FieldKind = Literal["text", "yes_no", "number", "choice"]
Choice = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CHOICE_CHARS)]


class PostCallField(BaseModel):
    """One value the model reads out of a finished call (`reason_for_call`, `resolved`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    name: str = Field(pattern=FIELD_NAME_PATTERN)
    """Key on the call record's `post_call.fields` (lower-case identifier, at most 40 characters)."""
    description: str = Field("", max_length=MAX_DESCRIPTION_CHARS)
    """What the model should put there, in a sentence."""
    kind: FieldKind = "text"
    """`text`, `yes_no` (stored as true/false), `number`, or `choice` (one of `choices`)."""
    choices: list[Choice] = Field(default_factory=list, max_length=MAX_CHOICES)
    """The allowed values of a `choice` field (at least two, no repeats); empty for other kinds."""

    @model_validator(mode="after")
    def _choices_fit_the_kind(self) -> PostCallField:
        if self.kind == "choice":
            if len(self.choices) < 2:
                raise ValueError(f"field {self.name!r}: a choice field needs at least 2 choices")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError(f"field {self.name!r}: choices repeat")
        elif self.choices:
            raise ValueError(f"field {self.name!r}: only a choice field has choices (kind is {self.kind!r})")
        return self


class PostCallConfig(BaseModel):
    """What happens after a call ends; off unless a summary or a field is asked for."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    summary: bool = False
    """Have the model write a short summary of the call."""
    fields: list[PostCallField] = Field(default_factory=list, max_length=MAX_POST_CALL_FIELDS)
    """Values the model fills from the transcript, stored on the call record and filterable."""

    @field_validator("fields")
    @classmethod
    def _names_are_unique(cls, fields: list[PostCallField]) -> list[PostCallField]:
        seen: set[str] = set()
        for field in fields:
            if field.name in seen:
                raise ValueError(f"field name {field.name!r} is declared twice")
            seen.add(field.name)
        return fields

    @property
    def enabled(self) -> bool:
        return self.summary or bool(self.fields)


def _cut(limit: int) -> AfterValidator:
    return AfterValidator(lambda text: text[:limit])


_ARGUMENTS = ConfigDict(
    strict=True, extra="forbid", allow_inf_nan=False, validate_by_alias=True, validate_by_name=False
)
"""Arguments are the model's: kinds are not coerced ("yes" is not a yes_no), unknown keys refused."""


def _value_type(field: PostCallField) -> Any:
    if field.kind == "yes_no":
        return bool
    if field.kind == "number":
        return float
    if field.kind == "choice":
        return Literal[tuple(field.choices)]  # type: ignore[valid-type]
    return Annotated[str, _cut(MAX_TEXT_VALUE_CHARS)]


def arguments_model(config: PostCallConfig) -> type[BaseModel]:
    """The pydantic model of `record_call_fields`'s arguments: `summary` (when asked for) and
    `fields`, one nullable value per declared field (null: the call did not say). Python names are
    `f0`, `f1`... with the declared names as aliases, so no name can shadow a model attribute."""
    declared: dict[str, Any] = {
        f"f{i}": (_value_type(f) | None, Field(None, alias=f.name, description=f.description or None))
        for i, f in enumerate(config.fields)
    }
    top: dict[str, Any] = {}
    if config.summary:
        summary = Annotated[str, _cut(MAX_SUMMARY_CHARS)]
        top["summary"] = (summary, Field(description="What the call was about and how it ended, in 1-3 sentences."))
    if config.fields:
        fields_model = create_model("DeclaredFields", __config__=_ARGUMENTS, **declared)
        top["fields"] = (fields_model, Field(description="The declared values; null where the call did not say."))
    return create_model("RecordCallFields", __config__=_ARGUMENTS, **top)


def tool_schema(config: PostCallConfig) -> dict[str, Any]:
    """The chat API's entry for the one strict tool."""
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": "Record the summary and the declared fields of the phone call in the transcript.",
            "parameters": strict_parameters(arguments_model(config)),
            "strict": True,
        },
    }
