"""The LLM tasks of translation and distillation (paper sections 3.3 and 3.5).

- ``back_translate``: a turn's functions and the plan's values -> the user's query
  (JSON ``{"query": ...}``); the rules are checked by
  :func:`magnet_lib.back_translation.check_query`.
- ``forth_translate``: the query, the turn's functions, earlier outputs and the environment's
  values -> the next calls, answered ``Thought: ...`` / ``Answer: [calls]`` or
  ``Answer: FINISH``.
- ``teacher_turn``: one assistant message of a positive trajectory, with the turn's
  ``[Hint]``: the next call(s) of the hint (``Answer: [calls]``) or the closing text.

Offline, each runs the deterministic implementation of its module; ``answer_text`` writes an
output in the format the parser reads, so the local test server can play the model.
"""

from __future__ import annotations

from magnet_lib.back_translation import BackTranslateInput, BackTranslation, offline_query, parse_query
from magnet_lib.distillation import TeacherMessage, TeacherStepInput, offline_teacher, parse_teacher, teacher_answer_text
from magnet_lib.forth_translation import ForthTranslateInput, ForthTranslation, answer_text, offline_answer, parse_answer
from magnet_lib.chat_format import system_prompt
from magnet_lib.llm.task import Task


class BackTranslateTask(Task[BackTranslateInput, BackTranslation]):
    name = "back_translate"
    template = "back_translate.md"
    input_model = BackTranslateInput
    output_model = BackTranslation

    def parse(self, text: str, item: BackTranslateInput) -> BackTranslation:
        return parse_query(text, item)

    def offline(self, item: BackTranslateInput) -> BackTranslation:
        return offline_query(item)

    def answer_text(self, output: BackTranslation) -> str:
        return output.model_dump_json()


class ForthTranslateTask(Task[ForthTranslateInput, ForthTranslation]):
    name = "forth_translate"
    template = "forth_translate.md"
    input_model = ForthTranslateInput
    output_model = ForthTranslation
    temperature = 0.0

    def parse(self, text: str, item: ForthTranslateInput) -> ForthTranslation:
        return parse_answer(text, item)

    def offline(self, item: ForthTranslateInput) -> ForthTranslation:
        return offline_answer(item)

    def answer_text(self, output: ForthTranslation) -> str:
        return answer_text(output)


class TeacherTurnTask(Task[TeacherStepInput, TeacherMessage]):
    name = "teacher_turn"
    template = "teacher_turn.md"
    input_model = TeacherStepInput
    output_model = TeacherMessage

    def variables(self, item: TeacherStepInput) -> dict:
        return {**super().variables(item), "system_prompt": system_prompt(item.tools)}

    def parse(self, text: str, item: TeacherStepInput) -> TeacherMessage:
        return parse_teacher(text, item)

    def offline(self, item: TeacherStepInput) -> TeacherMessage:
        return offline_teacher(item)

    def answer_text(self, output: TeacherMessage) -> str:
        return teacher_answer_text(output)


BACK_TRANSLATE = BackTranslateTask()
FORTH_TRANSLATE = ForthTranslateTask()
TEACHER_TURN = TeacherTurnTask()
