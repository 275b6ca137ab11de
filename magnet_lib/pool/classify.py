"""``classify_tool``: the category and class labels of a function (paper section 3.2).

The paper labels every API of the pool with a category (``Weather``) and a finer class
(``Weather condition tool``); the class is where the dependency judge looks for candidates.
Input: the function's name, description and parameters, the category it was filed under and
the labels that exist already. Output: :class:`ToolClassification`, answered as JSON.

Offline: the category the tool was filed under (a spec folder or an environment is a label a
person chose); with none, the existing category whose words best match the function's name
and description. The class: the existing class of the category that shares the most words
with the function (name words count double), else a new class made from the name, its
object words followed by the action (``book_flight`` -> ``Flight booking``).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from magnet_lib.llm.task import ParseError, Task, extract_json, output_schema
from magnet_lib.models import JSONSchema, Tool

#: a category nobody chose; offline classification replaces it when a better one matches
UNFILED = {"", "misc", "other", "uncategorized", "unknown", "default", "general"}

_STOP = {
    "a", "an", "and", "the", "of", "for", "to", "in", "on", "by", "with", "from", "or", "is", "are", "be",
    "this", "that", "it", "its", "as", "at", "all", "any", "given", "into", "if", "can", "will", "not", "user",
    "users", "function", "tool", "api", "returns", "return", "specified", "using", "based", "about", "one",
}  # fmt: skip
#: action word at the start of a function name -> the noun that names the activity
_ACTIONS = {
    "get": "lookup", "fetch": "lookup", "retrieve": "lookup", "read": "lookup", "show": "lookup", "view": "lookup",
    "list": "listing", "search": "search", "find": "search", "query": "search", "lookup": "lookup",
    "book": "booking", "reserve": "booking", "buy": "purchase", "purchase": "purchase", "order": "ordering",
    "pay": "payment", "send": "messaging", "post": "posting", "share": "sharing", "create": "management",
    "add": "management", "update": "management", "edit": "management", "set": "settings", "delete": "management",
    "remove": "management", "cancel": "cancellation", "convert": "conversion", "calculate": "calculation",
    "compute": "calculation", "check": "checks", "verify": "checks", "validate": "checks", "track": "tracking",
    "schedule": "scheduling", "download": "downloads", "upload": "uploads", "translate": "translation",
    "estimate": "estimation", "compare": "comparison", "subscribe": "subscriptions", "login": "authentication",
    "logout": "authentication", "authenticate": "authentication", "rate": "ratings", "review": "reviews",
}  # fmt: skip
#: domain words that point at a category even when the category's own name is not used
_DOMAIN_WORDS = {
    "weather": {"forecast", "temperature", "rain", "wind", "humidity", "climate", "storm", "uv", "snow"},
    "travel": {"flight", "hotel", "airport", "trip", "booking", "airline", "itinerary", "passport", "visa"},
    "finance": {"stock", "price", "market", "portfolio", "trade", "currency", "exchange", "bank", "payment", "loan"},
    "stock_trading": {"stock", "quote", "order", "portfolio", "trade", "watchlist", "market", "ticker", "share"},
    "files": {"file", "folder", "directory", "path", "document", "permission", "download", "upload"},
    "messaging": {"message", "chat", "email", "inbox", "contact", "conversation", "sms"},
    "navigation": {"route", "map", "distance", "direction", "location", "place", "traffic", "address"},
    "food_delivery": {"restaurant", "menu", "dish", "cart", "delivery", "courier", "food", "order"},
    "social": {"post", "follow", "feed", "like", "comment", "profile", "friend"},
    "health": {"doctor", "appointment", "prescription", "medication", "symptom", "insurance", "clinic"},
    "smart_home": {"device", "thermostat", "light", "scene", "lock", "camera", "sensor"},
    "calendar": {"event", "meeting", "calendar", "invite", "reminder", "schedule"},
    "shopping": {"product", "cart", "checkout", "price", "review", "return", "refund"},
    "music": {"song", "playlist", "album", "artist", "track"},
    "sports": {"team", "match", "player", "score", "league", "game"},
}  # fmt: skip


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassifyInput(_Model):
    """One function to label, with the labels that exist already."""

    name: str
    description: str
    parameters: JSONSchema = Field(default_factory=dict)
    category: str = Field("", description="The category the tool was filed under ('' = none).")
    categories: list[str] = Field(default_factory=list, description="Categories of the pool so far.")
    classes: list[str] = Field(default_factory=list, description="Classes of the tool's category so far.")

    @classmethod
    def for_tool(cls, tool: Tool, categories: list[str], classes: list[str]) -> ClassifyInput:
        return cls(
            name=tool.name,
            description=tool.description,
            parameters=tool.parameters,
            category=tool.category,
            categories=categories,
            classes=classes,
        )


class ToolClassification(_Model):
    category: str = Field(description="Broad domain, one of the existing categories where one fits.")
    tool_class: str = Field(description="Narrow group inside the category, two to four words.")


# --------------------------------------------------------------------------- words


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def words(text: str) -> list[str]:
    """Lower-case word stems of a name or sentence (snake_case and camelCase split)."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return [_stem(w) for w in re.split(r"[^A-Za-z0-9]+", text.lower()) if w and w not in _STOP and not w.isdigit()]


def _score(label: str, name_words: set[str], description_words: set[str]) -> int:
    label_words = set(words(label))
    return 2 * len(label_words & name_words) + len(label_words & description_words)


def class_from_name(name: str) -> str:
    """A new class from a function name: object words, then the activity
    (``book_flight`` -> ``Flight booking``, ``get_weather`` -> ``Weather lookup``)."""
    raw = [w.lower() for w in re.split(r"[^A-Za-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)) if w]
    if not raw:
        return "General tools"
    action = _ACTIONS.get(raw[0])
    objects = [w for w in (raw[1:] if action else raw) if w not in _STOP][:3]
    if not objects:
        return f"{raw[0].capitalize()} tools"
    label = " ".join(objects)
    return f"{label} {action}".capitalize() if action else f"{label} tools".capitalize()


def offline_classification(item: ClassifyInput) -> ToolClassification:
    """Keyword and name heuristics; the filed category wins when there is one."""
    name_words = set(words(item.name))
    description_words = set(words(item.description))
    category = item.category
    if category.strip().lower() in UNFILED and item.categories:

        def category_score(c: str) -> int:
            expanded = set(words(c)) | _DOMAIN_WORDS.get(c.lower(), set())
            return 2 * len(expanded & name_words) + len(expanded & description_words)

        best = max(item.categories, key=lambda c: (category_score(c), -item.categories.index(c)))
        category = best if category_score(best) > 0 else (item.category or item.categories[0])
    if not category:
        category = "general"
    tool_class = ""
    if item.classes:
        best_class = max(item.classes, key=lambda c: (_score(c, name_words, description_words), -item.classes.index(c)))
        if _score(best_class, name_words, description_words) >= 2:
            tool_class = best_class
    return ToolClassification(category=category, tool_class=tool_class or class_from_name(item.name))


# --------------------------------------------------------------------------- the task


class ClassifyToolTask(Task[ClassifyInput, ToolClassification]):
    name: ClassVar[str] = "classify_tool"
    template: ClassVar[str] = "classify_tool.md"
    input_model: ClassVar[type[BaseModel]] = ClassifyInput
    output_model: ClassVar[type[BaseModel]] = ToolClassification
    temperature: ClassVar[float | None] = 0.0

    def variables(self, item: ClassifyInput) -> dict[str, Any]:
        return item.model_dump()

    def parse(self, text: str, item: ClassifyInput) -> ToolClassification:
        data = extract_json(text)
        if not isinstance(data, dict):
            raise ParseError('answer with a JSON object {"category": ..., "tool_class": ...}')
        # other keys (a reason, say) are ignored; the two labels are trimmed
        out = self.validate_output({k: v.strip() if isinstance(v, str) else v for k, v in data.items() if k in ("category", "tool_class")})
        allowed = set(item.categories) | ({item.category} if item.category else set())
        if allowed and out.category not in allowed:
            raise ParseError(f"category '{out.category}' is not one of the existing categories: {', '.join(sorted(allowed))}")
        if not out.category:
            raise ParseError("category is empty")
        if not out.tool_class or len(out.tool_class) > 60 or len(out.tool_class.split()) > 6:
            raise ParseError(f"tool_class must be a short name of two to four words, got '{out.tool_class}'")
        return out

    def offline(self, item: ClassifyInput) -> ToolClassification:
        return offline_classification(item)

    def response_schema(self, item: ClassifyInput) -> dict:
        return output_schema(ToolClassification)

    def answer_text(self, output: ToolClassification) -> str:
        return output.model_dump_json()


CLASSIFY_TOOL = ClassifyToolTask()
