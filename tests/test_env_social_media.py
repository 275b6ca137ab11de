from magnet_lib.pool.envs.social_media import SocialMediaEnv
from tests.envs_support import ToolRecorder


def test_private_profile_is_gated_by_following():
    r = ToolRecorder(SocialMediaEnv(seed=3))
    env = r.env
    private = next(u for u in env.users.values() if u.is_private and env.me not in u.followers)
    found = r.ok("search_social_profiles", query=private.display_name.split()[0])["profiles"]
    user_id = next(p["user_id"] for p in found if p["username"] == private.username)
    profile = r.ok("get_social_profile", user_id=user_id)
    assert profile["is_private"] and not profile["is_followed"]
    r.err("get_user_posts", "private_account", user_id=user_id)
    hidden = next((p for p in env.posts.values() if p.user_id == user_id), None)
    if hidden is not None:
        r.err("like_post", "private_account", post_id=hidden.post_id)
    before = profile["follower_count"]
    followed = r.ok("follow_user", user_id=user_id)
    assert followed["is_followed"] and followed["follower_count"] == before + 1
    r.err("follow_user", "already_following", user_id=user_id)
    r.err("follow_user", "cannot_follow_self", user_id=env.me)
    r.ok("get_user_posts", user_id=user_id)
    feed = r.ok("get_home_feed", limit=50)["posts"]
    assert {p["user_id"] for p in feed} <= {u.user_id for u in env.users.values() if env.me in u.followers}
    # feed -> author -> unfollow: their posts leave the feed
    author = feed[0]["user_id"]
    assert not r.ok("unfollow_user", user_id=author)["is_followed"]
    assert all(p["user_id"] != author for p in r.ok("get_home_feed", limit=50)["posts"])
    r.err("unfollow_user", "not_following", user_id=author)
    r.err("get_social_profile", "unknown_user", user_id="U-0")


def test_posts_likes_comments_and_hashtags():
    r = ToolRecorder(SocialMediaEnv(seed=4))
    env = r.env
    trending = r.ok("get_trending_hashtags", limit=3)["hashtags"]
    assert len(trending) == 3 and trending[0]["post_count"] >= trending[-1]["post_count"]
    posts = r.ok("search_posts_by_hashtag", hashtag="#" + trending[0]["hashtag"])["posts"]
    assert len(posts) == trending[0]["post_count"] and all(trending[0]["hashtag"] in p["hashtags"] for p in posts)
    post_id = posts[0]["post_id"]
    details = r.ok("get_post_details", post_id=post_id)
    liked = r.ok("like_post", post_id=post_id)
    assert liked["like_count"] == details["like_count"] + 1
    assert r.ok("get_post_details", post_id=post_id)["liked_by_me"]
    r.err("like_post", "already_liked", post_id=post_id)
    comment = r.ok("comment_on_post", post_id=post_id, comment_text="Great shot!")
    assert r.ok("get_post_details", post_id=post_id)["comments"][-1]["comment_id"] == comment["comment_id"]
    r.ok("delete_post_comment", comment_id=comment["comment_id"])
    r.err("delete_post_comment", "unknown_comment", comment_id=comment["comment_id"])
    r.err("comment_on_post", "empty_comment", post_id=post_id, comment_text=" ")
    others = next(c for p in env.posts.values() for c in p.comments if c.user_id != env.me)
    r.err("delete_post_comment", "not_your_comment", comment_id=others.comment_id)

    # quote a post: its content becomes the content of a new post
    mine = r.ok("create_social_post", content=f"Worth reading: {details['content']}", hashtags=["shared"])
    assert "shared" in mine["hashtags"] and mine["user_id"] == env.me
    assert any(p["post_id"] == mine["post_id"] for p in r.ok("get_user_posts", user_id=env.me)["posts"])
    r.err("create_social_post", "content_too_long", content="x" * 501)
    r.err("create_social_post", "empty_post", content="")
    r.err("delete_social_post", "not_your_post", post_id=post_id)
    r.ok("delete_social_post", post_id=mine["post_id"])
    r.err("get_post_details", "unknown_post", post_id=mine["post_id"])


def test_every_tool_called():
    r = ToolRecorder(SocialMediaEnv(seed=5))
    env = r.env
    authors = {p.user_id for p in env.posts.values()}
    target = next(u for u in env.users.values() if u.user_id in authors and u.user_id != env.me and env.me not in u.followers)
    uid = r.ok("search_social_profiles", query=target.username)["profiles"][0]["user_id"]
    r.ok("get_social_profile", user_id=uid)
    r.ok("follow_user", user_id=uid)
    post_id = r.ok("get_user_posts", user_id=uid)["posts"][0]["post_id"]
    r.ok("like_post", post_id=post_id)
    cid = r.ok("comment_on_post", post_id=post_id, comment_text="Love this")["comment_id"]
    r.ok("delete_post_comment", comment_id=cid)
    tag = r.ok("get_trending_hashtags")["hashtags"][0]["hashtag"]
    first = r.ok("search_posts_by_hashtag", hashtag=tag)["posts"][0]["post_id"]
    content = r.ok("get_post_details", post_id=first)["content"]
    new = r.ok("create_social_post", content=content)["post_id"]
    r.ok("delete_social_post", post_id=new)
    r.ok("unfollow_user", user_id=r.ok("get_home_feed", limit=1)["posts"][0]["user_id"])
    r.assert_all_called()
