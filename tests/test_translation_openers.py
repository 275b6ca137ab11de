"""Offline phrasing read in the default run: 'Next: ...' opened a conversation, and nested
look-ups ended in the robotic '- the first one will do'."""

import re

from magnet_lib.pool.envs import builtin_environments
from magnet_lib.translation.back_translation import BackTranslateInput, FunctionRequest, offline_query

TOOLS = {t.name: t for env in builtin_environments().values() for t in env.tools()}


def _item(previous: list[str], salt: int) -> BackTranslateInput:
    return BackTranslateInput(
        category="shopping",
        requests=[
            FunctionRequest(function="list_shop_orders", description=TOOLS["list_shop_orders"].description, values={"note": salt}),
            FunctionRequest(
                function="get_shop_order_details",
                description=TOOLS["get_shop_order_details"].description,
                from_outputs={"order_id": "same_turn"},
                nested=True,
                ordinals={"order_id": "first"},
            ),
        ],
        avoid_names=sorted(TOOLS),
        previous_queries=previous,
    )


def test_a_first_message_never_opens_as_a_continuation_and_no_first_one_will_do():
    first = [offline_query(_item([], salt)).query for salt in range(120)]
    later = [offline_query(_item(["Show me my orders."], salt)).query for salt in range(120)]
    assert not any(q.startswith(("Next:", "One more thing")) for q in first)
    assert any(q.startswith(("Next:", "One more thing")) for q in later)  # later on they still continue the talk
    assert not any("first one will do" in q for q in first + later)
    assert any("first" in q for q in first)  # the nested look-up still says which element it takes


def _two_goals(salt: int) -> BackTranslateInput:
    def nested(function: str, param: str) -> FunctionRequest:
        return FunctionRequest(function=function, description=TOOLS[function].description, from_outputs={param: "same_turn"}, nested=True)

    return BackTranslateInput(
        category="healthcare",
        requests=[
            FunctionRequest(function="list_my_appointments", description=TOOLS["list_my_appointments"].description, values={"note": salt}),
            nested("get_appointment_details", "appointment_id"),
            nested("get_doctor_profile", "doctor_id"),
        ],
        avoid_names=sorted(TOOLS),
        previous_queries=["Hello."],
    )


def test_two_goals_never_share_a_phrase_and_no_the_my():
    """Read in the default run: 'Show me the my appointments', and 'I'd also like the
    appointment details that goes with it and I'd also like the doctor availability that goes with it'."""
    queries = [offline_query(_two_goals(salt)).query for salt in range(60)]
    assert not any(re.search(r"\bthe my\b", q, re.I) for q in queries)
    assert any(re.search(r"\bmy appointments\b", q) for q in queries)
    for q in queries:
        for phrase in ("I'd also like the", "give me the", "and with that, the", "and then the"):
            assert q.count(phrase) <= 1, q


def test_verbs_of_their_own_read_as_a_user_says_them():
    """Read in the default run: 'which is the files', 'Set up file for file path ...'
    (write_file), 'Please send file - username "jordan"' (share_file)."""

    def query(function: str, values: dict, nested: FunctionRequest | None = None, salt: int = 0) -> str:
        requests = [FunctionRequest(function=function, description=TOOLS[function].description, values={**values, "n": salt})]
        if nested is not None:
            requests.append(nested)
        item = BackTranslateInput(category="files", requests=requests, avoid_names=sorted(TOOLS), previous_queries=["Hi."])
        return offline_query(item).query

    check = FunctionRequest(
        function="check_file_exists",
        description=TOOLS["check_file_exists"].description,
        from_outputs={"file_path": "same_turn"},
        nested=True,
    )
    texts = [query("find_files", {"name_pattern": "*.txt"}, salt=s) for s in range(20)]
    texts += [query("write_file", {"file_path": "/a.txt", "content": "x"}, salt=s) for s in range(20)]
    texts += [query("share_file", {"file_path": "/a.txt", "username": "jordan"}, check, salt=s) for s in range(20)]
    assert not any(re.search(r"which is the|set up file|make file|send file", t, re.I) for t in texts)
    assert any("write to the file" in t for t in texts) and any("share the file" in t for t in texts)
