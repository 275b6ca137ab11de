from magnet_lib.pool.envs.messaging import MessagingEnv
from tests.envs_support import ToolRecorder


def test_messaging_flows():
    r = ToolRecorder(MessagingEnv(seed=3))
    env = r.env

    # inbox -> mark read; the unread count really drops
    unread = r.ok("check_message_inbox")["messages"]
    assert unread and all(not m["is_read"] and m["sender_name"] != "me" for m in unread)
    first = unread[0]
    r.ok("mark_message_as_read", message_id=first["message_id"])
    assert len(r.ok("check_message_inbox")["messages"]) == len(unread) - 1
    assert any(m["message_id"] == first["message_id"] for m in r.ok("check_message_inbox", unread_only=False)["messages"])
    r.err("mark_message_as_read", "already_read", message_id=first["message_id"])

    # find a contact by name -> open their conversation -> send -> history shows it -> delete
    target = env.contacts[first["contact_id"]]
    found = r.ok("find_contact_by_name", contact_name=target.contact_name.split()[0])["contacts"]
    contact_id = next(c["contact_id"] for c in found if c["contact_name"] == target.contact_name)
    opened = r.ok("open_conversation", contact_id=contact_id)
    assert opened["conversation_id"] == first["conversation_id"] and not opened["created"]
    # forwarding: the content of the message just read goes out again
    sent = r.ok("send_chat_message", conversation_id=opened["conversation_id"], content=first["content"])
    history = r.ok("get_conversation_messages", conversation_id=opened["conversation_id"], limit=2)["messages"]
    assert len(history) == 2 and history[-1]["message_id"] == sent["message_id"] and history[-1]["sender_name"] == "me"
    convs = r.ok("list_chat_conversations")["conversations"]
    assert convs[0]["conversation_id"] == opened["conversation_id"] and convs[0]["last_message"] == first["content"]
    r.ok("delete_chat_message", message_id=sent["message_id"])
    assert sent["message_id"] not in env.messages
    r.err("delete_chat_message", "unknown_message", message_id=sent["message_id"])
    r.err("delete_chat_message", "not_your_message", message_id=first["message_id"])

    # search -> conversation -> a message's content sent as an attachment
    hit = r.ok("search_chat_messages", keyword=first["content"].split()[0])["messages"][0]
    text = r.ok("get_conversation_messages", conversation_id=hit["conversation_id"])["messages"][0]["content"]
    att = r.ok("send_chat_attachment", conversation_id=hit["conversation_id"], file_name="notes.txt", content=text)
    assert env.messages[att["message_id"]].attachment_name == "notes.txt"
    r.err("send_chat_message", "empty_message", conversation_id=hit["conversation_id"], content="  ")
    r.err("get_conversation_messages", "unknown_conversation", conversation_id="CV-1")
    assert r.ok("search_chat_messages", keyword="zzzz")["messages"] == []


def test_blocking_gates_messaging():
    r = ToolRecorder(MessagingEnv(seed=4))
    env = r.env
    blocked = next(c for c in env.contacts.values() if c.is_blocked)
    info = r.ok("get_contact_info", contact_id=blocked.contact_id)
    assert info["is_blocked"]
    r.err("open_conversation", "contact_blocked", contact_id=blocked.contact_id)
    r.err("block_contact", "already_blocked", contact_id=blocked.contact_id)
    r.ok("unblock_contact", contact_id=blocked.contact_id)
    r.err("unblock_contact", "not_blocked", contact_id=blocked.contact_id)
    opened = r.ok("open_conversation", contact_id=blocked.contact_id)
    assert opened["created"]
    r.ok("send_chat_message", conversation_id=opened["conversation_id"], content="Hi again!")
    r.ok("block_contact", contact_id=blocked.contact_id)
    r.err("send_chat_message", "contact_blocked", conversation_id=opened["conversation_id"], content="hello?")
    r.err("send_chat_attachment", "contact_blocked", conversation_id=opened["conversation_id"], file_name="a.txt", content="x")
    r.err("get_contact_info", "unknown_contact", contact_id="CT-0")

    new = r.ok("add_new_contact", contact_name="Zoe Park", phone_number="+1-555-0142")
    assert r.ok("find_contact_by_name", contact_name="zoe")["contacts"][0]["contact_id"] == new["contact_id"]
    r.err("add_new_contact", "contact_exists", contact_name="Zoe Again", phone_number="+1-555-0142")
    conv = r.ok("open_conversation", contact_id=new["contact_id"])["conversation_id"]
    assert r.ok("get_conversation_messages", conversation_id=conv)["messages"] == []
    r.ok("send_chat_message", conversation_id=conv, content="Welcome!")
    r.ok("mark_message_as_read", message_id=r.ok("check_message_inbox")["messages"][0]["message_id"])
    r.ok("list_chat_conversations")
    r.ok("search_chat_messages", keyword="welcome")
    sent = r.ok("send_chat_attachment", conversation_id=conv, file_name="map.png", content="PNG")
    r.ok("delete_chat_message", message_id=sent["message_id"])
    r.assert_all_called()
