"""Social media: profiles, following, posts, the feed, hashtags, likes and comments.

Flows: search_social_profiles -> user_id -> get_social_profile (gate: is_private, is_followed)
-> follow_user -> get_user_posts -> post_id -> like_post / comment_on_post -> comment_id ->
delete_post_comment; get_trending_hashtags -> hashtag -> search_posts_by_hashtag -> post_id ->
get_post_details -> content -> create_social_post (quoting; also a file's content) -> post_id ->
delete_social_post; get_home_feed -> user_id -> unfollow_user.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from magnet_lib.pool.envs.base import ToolEnvironment, ToolError, tool

_MAX_POST_CHARS = 500
_PEOPLE = [
    ("lena_travels", "Lena Fischer", "Backpacking through 40 countries and counting."),
    ("chef_marco", "Marco Bianchi", "Home cook, pasta maker, occasional baker."),
    ("techwithpriya", "Priya Raman", "Software engineer writing about cloud and AI."),
    ("runner_tom", "Tom Becker", "Marathoner. Coffee first, then miles."),
    ("artsy_jules", "Jules Laurent", "Watercolours and city sketches."),
    ("greenthumb_ana", "Ana Costa", "Balcony gardener growing tomatoes in the city."),
    ("bookworm_sam", "Sam Ellis", "Reading 52 books a year, reviewing all of them."),
    ("photo_kenji", "Kenji Mori", "Street photography in Tokyo and beyond."),
    ("fitness_zoe", "Zoe Adams", "Personal trainer sharing daily workouts."),
    ("musician_eli", "Eli Brooks", "Indie songwriter, new album soon."),
]
_POSTS = [
    "Sunrise over the mountains this morning was unreal #travel #nature",
    "Fresh tagliatelle tonight, recipe in the comments #cooking #pasta",
    "Five lessons from deploying models to production #ai #engineering",
    "New personal best on the half marathon: {n}:4{n} #running #fitness",
    "Quick sketch of the harbour at dusk #art #watercolor",
    "First tomatoes of the season are finally red #gardening #nature",
    "Finished book number {n} of the year, highly recommend it #books",
    "Rainy night in Shibuya #photography #travel",
    "{n} minute core workout you can do anywhere #fitness",
    "Recording the last song of the album this week #music",
    "Is anyone else excited about the new language release? #engineering",
    "Weekend market haul: peaches, basil and bread #cooking",
]
_COMMENTS = ["Amazing!", "So inspiring.", "Where is this?", "Saving this for later.", "Congrats!"]


class Profile(BaseModel):
    user_id: str = Field(description="Identifier of the user.")
    username: str = Field(description="The user's handle.")
    display_name: str = Field(description="The user's display name.")


class ProfileMatches(BaseModel):
    """Profiles matching the search."""

    profiles: list[Profile] = Field(description="Matching profiles.")


class ProfileDetails(BaseModel):
    """A user's public profile."""

    user_id: str = Field(description="Identifier of the user.")
    username: str = Field(description="The user's handle.")
    display_name: str = Field(description="The user's display name.")
    bio: str = Field(description="Short self-description.")
    is_private: bool = Field(description="Private accounts show their posts only to followers.")
    is_followed: bool = Field(description="Whether the current user follows this account.")
    follower_count: int = Field(description="Number of followers.")
    post_count: int = Field(description="Number of posts.")


class FollowResult(BaseModel):
    """The follow relation after the action."""

    user_id: str = Field(description="Identifier of the other user.")
    is_followed: bool = Field(description="Whether the current user now follows them.")
    follower_count: int = Field(description="Their follower count after the action.")


class PostSummary(BaseModel):
    post_id: str = Field(description="Identifier of the post.")
    user_id: str = Field(description="Identifier of the post's author.")
    username: str = Field(description="Handle of the post's author.")
    content: str = Field(description="Text of the post.")
    hashtags: list[str] = Field(description="Hashtags of the post, without '#'.")
    like_count: int = Field(description="Number of likes.")
    comment_count: int = Field(description="Number of comments.")


class PostList(BaseModel):
    """Posts, newest first."""

    posts: list[PostSummary] = Field(description="The posts.")


class Comment(BaseModel):
    comment_id: str = Field(description="Identifier of the comment.")
    user_id: str = Field(description="Identifier of the commenter.")
    comment_text: str = Field(description="Text of the comment.")


class PostDetails(BaseModel):
    """A post with its comments."""

    post_id: str = Field(description="Identifier of the post.")
    user_id: str = Field(description="Identifier of the post's author.")
    username: str = Field(description="Handle of the post's author.")
    content: str = Field(description="Text of the post.")
    hashtags: list[str] = Field(description="Hashtags of the post, without '#'.")
    like_count: int = Field(description="Number of likes.")
    liked_by_me: bool = Field(description="Whether the current user liked it.")
    comments: list[Comment] = Field(description="Comments, oldest first.")


class LikeResult(BaseModel):
    """A post's likes after liking it."""

    post_id: str = Field(description="Identifier of the post.")
    like_count: int = Field(description="Number of likes now.")


class CommentPosted(BaseModel):
    """A comment that was added."""

    comment_id: str = Field(description="Identifier of the new comment.")
    post_id: str = Field(description="Post it was added to.")


class HashtagCount(BaseModel):
    hashtag: str = Field(description="The hashtag, without '#'.")
    post_count: int = Field(description="Number of posts using it.")


class TrendingHashtags(BaseModel):
    """The most used hashtags."""

    hashtags: list[HashtagCount] = Field(description="Hashtags, most used first.")


class Status(BaseModel):
    """Outcome of an action."""

    success: bool = Field(description="Whether the action succeeded.")
    message: str = Field(description="What happened.")


class _Post(BaseModel):
    post_id: str
    user_id: str
    content: str
    hashtags: list[str]
    likes: list[str] = Field(default_factory=list)  # a list, not a set: the state's order must not depend on PYTHONHASHSEED
    comments: list[Comment] = Field(default_factory=list)


class _User(BaseModel):
    user_id: str
    username: str
    display_name: str
    bio: str
    is_private: bool
    followers: list[str] = Field(default_factory=list)  # ordered, like likes


def _add(members: list[str], *ids: str) -> None:
    """Add ids to an ordered set kept as a list."""
    members.extend(i for i in dict.fromkeys(ids) if i not in members)


def _tags(content: str) -> list[str]:
    return list(dict.fromkeys(t.lower() for t in re.findall(r"#(\w+)", content)))


class SocialMediaEnv(ToolEnvironment):
    category = "social_media"
    description = "Profiles, following, posting, the home feed, hashtags, likes and comments."

    def setup(self) -> None:
        self.users: dict[str, _User] = {}
        people = self.rng.sample(_PEOPLE, 8)
        self.me = self.new_id("U")
        self.users[self.me] = _User(user_id=self.me, username="me", display_name="You", bio="", is_private=False)
        for i, (handle, name, bio) in enumerate(people):
            uid = self.new_id("U")
            # two private accounts, the first of them followed already
            self.users[uid] = _User(user_id=uid, username=handle, display_name=name, bio=bio, is_private=i in (0, 1))
        others = [u for u in self.users if u != self.me]
        for uid in others[:1] + others[2:4]:
            _add(self.users[uid].followers, self.me)
        for uid in others:
            _add(self.users[uid].followers, *self.rng.sample([o for o in others if o != uid], self.rng.randint(1, 4)))
        self.posts: dict[str, _Post] = {}  # insertion order = time order, newest last
        for uid in self.rng.choices(others, k=16):
            self._publish(uid, self.rng.choice(_POSTS).format(n=self.rng.randint(1, 9)))
        for post in self.posts.values():
            _add(post.likes, *self.rng.sample(others, self.rng.randint(0, 4)))
            if self.rng.random() < 0.5:
                author = self.rng.choice(others)
                post.comments.append(Comment(comment_id=self.new_id("CM"), user_id=author, comment_text=self.rng.choice(_COMMENTS)))

    def user_values(self) -> dict[str, list]:
        return {
            "query": [u.display_name.split()[0] for u in self.users.values() if u.user_id != self.me],
            "content": ["Just finished my first 10k! #running", "Loving this sunny weather #nature"],
            "comment_text": ["Great shot!", "Love this, thanks for sharing.", "Recipe please!"],
            "hashtag": sorted({t for p in self.posts.values() for t in p.hashtags}),
        }

    def accepts(self, tool: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """Another user to follow (not followed yet), one followed to unfollow, one's own comment to delete."""
        if param == "user_id" and tool in ("follow_user", "unfollow_user"):
            user = self.users.get(value)
            if user is None or value == self.me:
                return False
            return (self.me in user.followers) == (tool == "unfollow_user")
        if tool == "delete_post_comment" and param == "comment_id":
            return any(c.comment_id == value and c.user_id == self.me for p in self.posts.values() for c in p.comments)
        return True

    # ------------------------------------------------------------------ helpers
    def _publish(self, user_id: str, content: str, extra_tags: list[str] | None = None) -> _Post:
        tags = _tags(content)
        tags += [t.lstrip("#").lower() for t in extra_tags or [] if t.lstrip("#").lower() not in tags]
        post = _Post(post_id=self.new_id("PO"), user_id=user_id, content=content, hashtags=tags)
        self.posts[post.post_id] = post
        return post

    def _user(self, user_id: str) -> _User:
        return self.lookup(self.users, user_id, "unknown_user", f"no user with id '{user_id}'")

    def _visible(self, user: _User) -> bool:
        return not user.is_private or user.user_id == self.me or self.me in user.followers

    def _post(self, post_id: str) -> _Post:
        post = self.posts.get(post_id)
        if post is None:
            raise ToolError("unknown_post", f"no post with id '{post_id}'")
        if not self._visible(self.users[post.user_id]):
            raise ToolError("private_account", f"post '{post_id}' belongs to a private account; follow it first")
        return post

    def _summary(self, p: _Post) -> PostSummary:
        return PostSummary(
            post_id=p.post_id,
            user_id=p.user_id,
            username=self.users[p.user_id].username,
            content=p.content,
            hashtags=p.hashtags,
            like_count=len(p.likes),
            comment_count=len(p.comments),
        )

    def _newest_first(self, posts) -> list[PostSummary]:
        return [self._summary(p) for p in reversed(list(posts))]

    # ------------------------------------------------------------------ profiles and following
    @tool("Profiles and following")
    def search_social_profiles(self, query: str) -> ProfileMatches:
        """Search user profiles by handle or display name.

        Args:
            query: Part of the handle or name, e.g. 'marco'.
        """
        text = query.lower()
        hits = [
            Profile(user_id=u.user_id, username=u.username, display_name=u.display_name)
            for u in self.users.values()
            if u.user_id != self.me and (text in u.username.lower() or text in u.display_name.lower())
        ]
        return ProfileMatches(profiles=hits)

    @tool("Profiles and following")
    def get_social_profile(self, user_id: str) -> ProfileDetails:
        """A user's profile: bio, privacy, follower and post counts, and whether the current user follows them.

        Args:
            user_id: Identifier of the user.
        """
        u = self._user(user_id)
        return ProfileDetails(
            user_id=u.user_id,
            username=u.username,
            display_name=u.display_name,
            bio=u.bio,
            is_private=u.is_private,
            is_followed=self.me in u.followers,
            follower_count=len(u.followers),
            post_count=sum(p.user_id == user_id for p in self.posts.values()),
        )

    @tool("Profiles and following")
    def follow_user(self, user_id: str) -> FollowResult:
        """Follow a user so their posts appear in the home feed (and private posts become visible).

        Args:
            user_id: Identifier of the user to follow.
        """
        u = self._user(user_id)
        if user_id == self.me:
            raise ToolError("cannot_follow_self", "the current user cannot follow themselves")
        if self.me in u.followers:
            raise ToolError("already_following", f"already following @{u.username}")
        _add(u.followers, self.me)
        return FollowResult(user_id=user_id, is_followed=True, follower_count=len(u.followers))

    @tool("Profiles and following")
    def unfollow_user(self, user_id: str) -> FollowResult:
        """Stop following a user.

        Args:
            user_id: Identifier of a followed user.
        """
        u = self._user(user_id)
        if self.me not in u.followers:
            raise ToolError("not_following", f"not following @{u.username}")
        u.followers.remove(self.me)
        return FollowResult(user_id=user_id, is_followed=False, follower_count=len(u.followers))

    # ------------------------------------------------------------------ posting
    @tool("Posting")
    def create_social_post(self, content: str, hashtags: list[str] | None = None) -> PostSummary:
        """Publish a post as the current user; '#words' in the content become hashtags.

        Args:
            content: Text of the post, at most 500 characters.
            hashtags: Extra hashtags to attach, without '#'.
        """
        if not content.strip():
            raise ToolError("empty_post", "a post needs some text")
        if len(content) > _MAX_POST_CHARS:
            raise ToolError("content_too_long", f"posts are limited to {_MAX_POST_CHARS} characters, got {len(content)}")
        return self._summary(self._publish(self.me, content, hashtags))

    @tool("Posting")
    def get_user_posts(self, user_id: str) -> PostList:
        """The posts of one user, newest first; private accounts only show them to followers.

        Args:
            user_id: Identifier of the user.
        """
        u = self._user(user_id)
        if not self._visible(u):
            raise ToolError("private_account", f"@{u.username} is private; follow them to see their posts")
        return PostList(posts=self._newest_first(p for p in self.posts.values() if p.user_id == user_id))

    @tool("Posting")
    def delete_social_post(self, post_id: str) -> Status:
        """Delete one of the current user's own posts.

        Args:
            post_id: Identifier of the post to delete.
        """
        post = self._post(post_id)
        if post.user_id != self.me:
            raise ToolError("not_your_post", "only the current user's own posts can be deleted")
        del self.posts[post_id]
        return Status(success=True, message=f"deleted post {post_id}")

    # ------------------------------------------------------------------ feed and discovery
    @tool("Feed and discovery")
    def get_home_feed(self, limit: int = 10) -> PostList:
        """Latest posts of the accounts the current user follows, newest first.

        Args:
            limit: Maximum number of posts to return.
        """
        followed = {u.user_id for u in self.users.values() if self.me in u.followers}
        return PostList(posts=self._newest_first(p for p in self.posts.values() if p.user_id in followed)[:limit])

    @tool("Feed and discovery")
    def get_trending_hashtags(self, limit: int = 5) -> TrendingHashtags:
        """The most used hashtags across visible posts.

        Args:
            limit: How many hashtags to return.
        """
        counts: dict[str, int] = {}
        for p in self.posts.values():
            if self._visible(self.users[p.user_id]):
                for t in p.hashtags:
                    counts[t] = counts.get(t, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return TrendingHashtags(hashtags=[HashtagCount(hashtag=t, post_count=c) for t, c in ranked])

    @tool("Feed and discovery")
    def search_posts_by_hashtag(self, hashtag: str) -> PostList:
        """Visible posts carrying a hashtag, newest first.

        Args:
            hashtag: The hashtag, with or without '#', e.g. 'travel'.
        """
        tag = hashtag.lstrip("#").lower()
        return PostList(
            posts=self._newest_first(p for p in self.posts.values() if tag in p.hashtags and self._visible(self.users[p.user_id]))
        )

    @tool("Feed and discovery")
    def get_post_details(self, post_id: str) -> PostDetails:
        """A post's full text, likes and comments.

        Args:
            post_id: Identifier of the post.
        """
        p = self._post(post_id)
        s = self._summary(p)
        return PostDetails(**s.model_dump(exclude={"comment_count"}), liked_by_me=self.me in p.likes, comments=list(p.comments))

    # ------------------------------------------------------------------ engagement
    @tool("Engagement")
    def like_post(self, post_id: str) -> LikeResult:
        """Like a post.

        Args:
            post_id: Identifier of the post to like.
        """
        p = self._post(post_id)
        if self.me in p.likes:
            raise ToolError("already_liked", f"post '{post_id}' is already liked")
        _add(p.likes, self.me)
        return LikeResult(post_id=post_id, like_count=len(p.likes))

    @tool("Engagement")
    def comment_on_post(self, post_id: str, comment_text: str) -> CommentPosted:
        """Add a comment to a post.

        Args:
            post_id: Identifier of the post.
            comment_text: Text of the comment.
        """
        p = self._post(post_id)
        if not comment_text.strip():
            raise ToolError("empty_comment", "a comment needs some text")
        comment = Comment(comment_id=self.new_id("CM"), user_id=self.me, comment_text=comment_text)
        p.comments.append(comment)
        return CommentPosted(comment_id=comment.comment_id, post_id=post_id)

    @tool("Engagement")
    def delete_post_comment(self, comment_id: str) -> Status:
        """Delete a comment the current user wrote.

        Args:
            comment_id: Identifier of the comment.
        """
        for p in self.posts.values():
            for c in p.comments:
                if c.comment_id == comment_id:
                    if c.user_id != self.me:
                        raise ToolError("not_your_comment", "only the current user's own comments can be deleted")
                    p.comments.remove(c)
                    return Status(success=True, message=f"deleted comment {comment_id}")
        raise ToolError("unknown_comment", f"no comment with id '{comment_id}'")
