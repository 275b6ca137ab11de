"""Messaging: contacts, conversations, sending messages and attachments, the inbox, blocking.

Flows: find_contact_by_name / add_new_contact -> contact_id -> get_contact_info (gate: is_blocked)
-> unblock_contact -> open_conversation -> conversation_id -> send_chat_message -> message_id ->
delete_chat_message; check_message_inbox -> message_id -> mark_message_as_read, and its content ->
send_chat_message (forwarding); list_chat_conversations / search_chat_messages -> conversation_id
-> get_conversation_messages -> content -> send_chat_attachment; block_contact -> open_conversation fails.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from magnet_lib.pool.envs.base import ToolEnvironment, ToolError, tool

_NAMES = [
    "Ava Thompson",
    "Ben Carter",
    "Chloe Nguyen",
    "Daniel Kim",
    "Emma Rossi",
    "Felix Wagner",
    "Grace Okafor",
    "Hugo Martin",
    "Isla Patel",
    "Jack Murphy",
    "Kira Sato",
    "Liam O'Brien",
    "Maya Cohen",
    "Noah Silva",
]
_INCOMING = [
    "Are we still on for lunch tomorrow at {n}?",
    "I sent you the slides, can you review them before {n} pm?",
    "Happy birthday! Hope you have a great day.",
    "The package arrived, thanks so much!",
    "Can you pick up {n} bottles of water on your way?",
    "Running {n} minutes late, sorry!",
    "Did you see the game last night? What a finish.",
    "Here is the address for Saturday: {n} Maple Street.",
    "Could you send me the photos from the trip?",
    "Reminder: rent is due on the {n}th.",
]
_OUTGOING = [
    "Sounds good, see you then.",
    "Thanks, I will take a look tonight.",
    "No worries, take your time.",
    "Sure, I can do that.",
    "Let me check my calendar and get back to you.",
]
_START = datetime(2024, 6, 3, 9, 0)


class Contact(BaseModel):
    contact_id: str = Field(description="Identifier of the contact.")
    contact_name: str = Field(description="Full name of the contact.")
    phone_number: str = Field(description="Phone number of the contact.")


class ContactMatches(BaseModel):
    """Contacts whose name matches."""

    contacts: list[Contact] = Field(description="Matching contacts.")


class ContactInfo(BaseModel):
    """Full details of a contact."""

    contact_id: str = Field(description="Identifier of the contact.")
    contact_name: str = Field(description="Full name of the contact.")
    phone_number: str = Field(description="Phone number of the contact.")
    email: str = Field(description="Email address of the contact.")
    is_blocked: bool = Field(description="True when the user has blocked this contact; blocked contacts cannot be messaged.")


class Message(BaseModel):
    message_id: str = Field(description="Identifier of the message.")
    conversation_id: str = Field(description="Conversation the message belongs to.")
    contact_id: str = Field(description="The other person in the conversation.")
    sender_name: str = Field(description="Who sent it: the contact's name, or 'me'.")
    content: str = Field(description="Text of the message.")
    attachment_name: str = Field(default="", description="File name of the attachment; empty when there is none.")
    sent_at: str = Field(description="When it was sent, ISO 8601.")
    is_read: bool = Field(description="Whether the user has read it (own messages are always read).")


class MessageList(BaseModel):
    """Messages, oldest first."""

    messages: list[Message] = Field(description="The messages.")


class ConversationSummary(BaseModel):
    conversation_id: str = Field(description="Identifier of the conversation.")
    contact_id: str = Field(description="The other person in the conversation.")
    contact_name: str = Field(description="Name of the other person.")
    unread_count: int = Field(description="Number of unread incoming messages.")
    last_message: str = Field(description="Text of the most recent message.")


class ConversationList(BaseModel):
    """The user's conversations, most recent first."""

    conversations: list[ConversationSummary] = Field(description="The conversations.")


class ConversationOpened(BaseModel):
    """A conversation with a contact, new or existing."""

    conversation_id: str = Field(description="Identifier of the conversation.")
    contact_id: str = Field(description="The other person in the conversation.")
    created: bool = Field(description="True when the conversation did not exist before.")


class SentMessage(BaseModel):
    """A message that was sent."""

    message_id: str = Field(description="Identifier of the sent message.")
    conversation_id: str = Field(description="Conversation it was sent to.")
    sent_at: str = Field(description="When it was sent, ISO 8601.")


class Status(BaseModel):
    """Outcome of an action."""

    success: bool = Field(description="Whether the action succeeded.")
    message: str = Field(description="What happened.")


class MessagingEnv(ToolEnvironment):
    category = "messaging"
    description = "Chatting with contacts: conversations, messages, attachments, the inbox and blocking."

    def setup(self) -> None:
        self.clock = _START + timedelta(minutes=self.rng.randrange(0, 600))
        self.contacts: dict[str, ContactInfo] = {}
        for name in self.rng.sample(_NAMES, 8):
            self._new_contact(name, f"+1-555-{self.rng.randrange(1000, 10000)}")
        ids = list(self.contacts)
        self.contacts[ids[-1]].is_blocked = True
        self.conversations: dict[str, str] = {}  # conversation_id -> contact_id
        self.messages: dict[str, Message] = {}  # insertion order is time order
        for contact_id in ids[:5]:
            conversation_id = self._open(contact_id)
            for _ in range(self.rng.randint(2, 4)):
                if self.rng.random() < 0.6:
                    text = self.rng.choice(_INCOMING).format(n=self.rng.randint(2, 12))
                    self._post(conversation_id, text, incoming=True, is_read=self.rng.random() < 0.4)
                else:
                    self._post(conversation_id, self.rng.choice(_OUTGOING), incoming=False)
            # every seeded conversation ends with an unread incoming message, so the inbox is never empty
            self._post(conversation_id, self.rng.choice(_INCOMING).format(n=self.rng.randint(2, 12)), incoming=True, is_read=False)

    def user_values(self) -> dict[str, list]:
        return {
            "contact_name": [c.contact_name.split()[0] for c in self.contacts.values()],
            "phone_number": ["+1-555-0142", "+1-555-0199"],
            "content": ["On my way!", "Can we move our call to 3 pm?", "Thanks for dinner last night."],
            "file_name": ["notes.txt", "itinerary.pdf", "photo.jpg"],
            "keyword": ["lunch", "photos", "late", "address"],
        }

    def accepts(self, tool: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """An unread message to mark as read, one's own message to delete, a new number and a
        name not in the address book yet to add (a second 'Daniel Kim' is a duplicate contact)."""
        if param == "message_id" and tool in ("mark_message_as_read", "delete_chat_message"):
            message = self.messages.get(value)
            if message is None:
                return False
            return not message.is_read if tool == "mark_message_as_read" else message.sender_name == "me"
        if tool == "add_new_contact" and param == "phone_number":
            return all(c.phone_number != value for c in self.contacts.values())
        if tool == "add_new_contact" and param == "contact_name":
            return all(c.contact_name.lower() != str(value).lower() for c in self.contacts.values())
        return True

    # ------------------------------------------------------------------ helpers
    def _new_contact(self, name: str, phone: str) -> ContactInfo:
        contact_id = self.new_id("CT")
        email = name.lower().replace(" ", ".").replace("'", "") + "@example.com"
        self.contacts[contact_id] = ContactInfo(contact_id=contact_id, contact_name=name, phone_number=phone, email=email, is_blocked=False)
        return self.contacts[contact_id]

    def _contact(self, contact_id: str) -> ContactInfo:
        return self.lookup(self.contacts, contact_id, "unknown_contact", f"no contact with id '{contact_id}'")

    def _open(self, contact_id: str) -> str:
        conversation_id = self.new_id("CV")
        self.conversations[conversation_id] = contact_id
        return conversation_id

    def _conversation(self, conversation_id: str) -> str:
        return self.lookup(self.conversations, conversation_id, "unknown_conversation", f"no conversation with id '{conversation_id}'")

    def _message(self, message_id: str) -> Message:
        return self.lookup(self.messages, message_id, "unknown_message", f"no message with id '{message_id}'")

    def _post(self, conversation_id: str, content: str, incoming: bool, is_read: bool = True, attachment: str = "") -> Message:
        self.clock += timedelta(minutes=self.rng.randint(1, 90))
        contact_id = self.conversations[conversation_id]
        message = Message(
            message_id=self.new_id("MS"),
            conversation_id=conversation_id,
            contact_id=contact_id,
            sender_name=self.contacts[contact_id].contact_name if incoming else "me",
            content=content,
            attachment_name=attachment,
            sent_at=self.clock.isoformat(),
            is_read=is_read or not incoming,
        )
        self.messages[message.message_id] = message
        return message

    def _send(self, conversation_id: str, content: str, attachment: str = "") -> SentMessage:
        contact = self.contacts[self._conversation(conversation_id)]
        if contact.is_blocked:
            raise ToolError("contact_blocked", f"{contact.contact_name} is blocked; unblock the contact before messaging")
        if not content.strip():
            raise ToolError("empty_message", "the message has no text")
        m = self._post(conversation_id, content, incoming=False, attachment=attachment)
        return SentMessage(message_id=m.message_id, conversation_id=conversation_id, sent_at=m.sent_at)

    # ------------------------------------------------------------------ contacts
    @tool("Contact management")
    def find_contact_by_name(self, contact_name: str) -> ContactMatches:
        """Find contacts whose name contains the given text.

        Args:
            contact_name: Part of the contact's name, e.g. 'Emma'.
        """
        text = contact_name.lower()
        hits = [
            Contact(contact_id=c.contact_id, contact_name=c.contact_name, phone_number=c.phone_number)
            for c in self.contacts.values()
            if text in c.contact_name.lower()
        ]
        return ContactMatches(contacts=hits)

    @tool("Contact management")
    def get_contact_info(self, contact_id: str) -> ContactInfo:
        """Full details of a contact: phone, email and whether they are blocked.

        Args:
            contact_id: Identifier of the contact.
        """
        return self._contact(contact_id)

    @tool("Contact management")
    def add_new_contact(self, contact_name: str, phone_number: str) -> ContactInfo:
        """Save a new contact to the address book.

        Args:
            contact_name: Full name of the person.
            phone_number: Their phone number, e.g. '+1-555-0142'.
        """
        if any(c.phone_number == phone_number for c in self.contacts.values()):
            raise ToolError("contact_exists", f"a contact with number {phone_number} already exists")
        return self._new_contact(contact_name, phone_number)

    @tool("Contact management")
    def block_contact(self, contact_id: str) -> Status:
        """Block a contact: no messages can be exchanged with them until unblocked.

        Args:
            contact_id: Identifier of the contact to block.
        """
        contact = self._contact(contact_id)
        if contact.is_blocked:
            raise ToolError("already_blocked", f"{contact.contact_name} is already blocked")
        contact.is_blocked = True
        return Status(success=True, message=f"blocked {contact.contact_name}")

    @tool("Contact management")
    def unblock_contact(self, contact_id: str) -> Status:
        """Unblock a previously blocked contact.

        Args:
            contact_id: Identifier of the blocked contact.
        """
        contact = self._contact(contact_id)
        if not contact.is_blocked:
            raise ToolError("not_blocked", f"{contact.contact_name} is not blocked")
        contact.is_blocked = False
        return Status(success=True, message=f"unblocked {contact.contact_name}")

    # ------------------------------------------------------------------ conversations
    @tool("Conversations")
    def open_conversation(self, contact_id: str) -> ConversationOpened:
        """Open the conversation with a contact, creating it when there is none yet.

        Args:
            contact_id: Identifier of the contact to talk to.
        """
        contact = self._contact(contact_id)
        if contact.is_blocked:
            raise ToolError("contact_blocked", f"{contact.contact_name} is blocked; unblock the contact first")
        for conversation_id, other in self.conversations.items():
            if other == contact_id:
                return ConversationOpened(conversation_id=conversation_id, contact_id=contact_id, created=False)
        return ConversationOpened(conversation_id=self._open(contact_id), contact_id=contact_id, created=True)

    @tool("Conversations")
    def list_chat_conversations(self) -> ConversationList:
        """List the user's conversations with their unread counts, most recent first."""
        latest: dict[str, Message] = {}
        unread: dict[str, int] = {}
        for m in self.messages.values():
            latest[m.conversation_id] = m
            unread[m.conversation_id] = unread.get(m.conversation_id, 0) + (not m.is_read)
        summaries = [
            ConversationSummary(
                conversation_id=cid,
                contact_id=contact_id,
                contact_name=self.contacts[contact_id].contact_name,
                unread_count=unread.get(cid, 0),
                last_message=latest[cid].content if cid in latest else "",
            )
            for cid, contact_id in self.conversations.items()
        ]
        summaries.sort(key=lambda s: latest[s.conversation_id].sent_at if s.conversation_id in latest else "", reverse=True)
        return ConversationList(conversations=summaries)

    @tool("Conversations")
    def get_conversation_messages(self, conversation_id: str, limit: int = 20) -> MessageList:
        """The most recent messages of a conversation, oldest first.

        Args:
            conversation_id: Identifier of the conversation.
            limit: How many of the latest messages to return.
        """
        self._conversation(conversation_id)
        messages = [m for m in self.messages.values() if m.conversation_id == conversation_id]
        return MessageList(messages=messages[-limit:] if limit > 0 else [])

    @tool("Conversations")
    def search_chat_messages(self, keyword: str) -> MessageList:
        """Search all conversations for messages containing a word or phrase.

        Args:
            keyword: The word or phrase to look for, e.g. 'lunch'.
        """
        text = keyword.lower()
        return MessageList(messages=[m for m in self.messages.values() if text in m.content.lower()])

    @tool("Conversations")
    def delete_chat_message(self, message_id: str) -> Status:
        """Delete a message the user sent.

        Args:
            message_id: Identifier of the message to delete.
        """
        message = self._message(message_id)
        if message.sender_name != "me":
            raise ToolError("not_your_message", "only messages the user sent can be deleted")
        del self.messages[message_id]
        return Status(success=True, message=f"deleted message {message_id}")

    # ------------------------------------------------------------------ sending
    @tool("Message sending")
    def send_chat_message(self, conversation_id: str, content: str) -> SentMessage:
        """Send a text message in a conversation.

        Args:
            conversation_id: Identifier of the conversation, from open_conversation or the conversation list.
            content: Text of the message.
        """
        return self._send(conversation_id, content)

    @tool("Message sending")
    def send_chat_attachment(self, conversation_id: str, file_name: str, content: str) -> SentMessage:
        """Send a file as an attachment in a conversation.

        Args:
            conversation_id: Identifier of the conversation.
            file_name: Name the attached file gets, e.g. 'notes.txt'.
            content: The file's content.
        """
        return self._send(conversation_id, content, attachment=file_name)

    # ------------------------------------------------------------------ inbox
    @tool("Inbox")
    def check_message_inbox(self, unread_only: bool = True) -> MessageList:
        """Incoming messages across all conversations, oldest first.

        Args:
            unread_only: Only return messages the user has not read yet.
        """
        incoming = [m for m in self.messages.values() if m.sender_name != "me" and (not unread_only or not m.is_read)]
        return MessageList(messages=incoming)

    @tool("Inbox")
    def mark_message_as_read(self, message_id: str) -> Status:
        """Mark an incoming message as read.

        Args:
            message_id: Identifier of the message.
        """
        message = self._message(message_id)
        if message.is_read:
            raise ToolError("already_read", f"message {message_id} is already read")
        message.is_read = True
        return Status(success=True, message=f"marked {message_id} as read")
