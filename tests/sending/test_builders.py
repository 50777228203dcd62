"""Builders produce exactly the bodies of §2.2 and cannot produce the defects of §2.5."""

import json

import pytest

from wechat import builders
from wechat.builders import BuildError, build, serialize

# (msgtype, data, the exact wire bytes of §2.2's full examples)
EXAMPLES = [
    ("text", {"content": "Hello"}, '{"touser":"OPENID","msgtype":"text","text":{"content":"Hello"}}'),
    ("image", {"media_id": "MEDIA_ID"}, '{"touser":"OPENID","msgtype":"image","image":{"media_id":"MEDIA_ID"}}'),
    ("voice", {"media_id": "MEDIA_ID"}, '{"touser":"OPENID","msgtype":"voice","voice":{"media_id":"MEDIA_ID"}}'),
    (
        "video",
        {"media_id": "MEDIA_ID", "thumb_media_id": "THUMB_ID", "title": "T", "description": "D"},
        '{"touser":"OPENID","msgtype":"video","video":{"media_id":"MEDIA_ID","thumb_media_id":"THUMB_ID","title":"T","description":"D"}}',
    ),
    (
        "music",
        {"title": "T", "description": "D", "musicurl": "URL", "hqmusicurl": "HQ_URL", "thumb_media_id": "THUMB_ID"},
        '{"touser":"OPENID","msgtype":"music","music":{"title":"T","description":"D","musicurl":"URL","hqmusicurl":"HQ_URL","thumb_media_id":"THUMB_ID"}}',
    ),
    (
        "news",
        {
            "articles": [
                {"title": "T", "description": "D", "url": "https://u.example/a", "picurl": "https://u.example/p.jpg"}
            ]
        },
        '{"touser":"OPENID","msgtype":"news","news":{"articles":[{"title":"T","description":"D","url":"https://u.example/a","picurl":"https://u.example/p.jpg"}]}}',
    ),
    ("mpnews", {"media_id": "MEDIA_ID"}, '{"touser":"OPENID","msgtype":"mpnews","mpnews":{"media_id":"MEDIA_ID"}}'),
    (
        "mpnewsarticle",
        {"article_id": "ARTICLE_ID"},
        '{"touser":"OPENID","msgtype":"mpnewsarticle","mpnewsarticle":{"article_id":"ARTICLE_ID"}}',
    ),
    (
        "msgmenu",
        {
            "head_content": "Satisfied?",
            "list": [{"id": "101", "content": "Yes"}, {"id": "102", "content": "No"}],
            "tail_content": "Thanks",
        },
        '{"touser":"OPENID","msgtype":"msgmenu","msgmenu":{"head_content":"Satisfied?","list":[{"id":"101","content":"Yes"},{"id":"102","content":"No"}],"tail_content":"Thanks"}}',
    ),
    ("wxcard", {"card_id": "CARD_ID"}, '{"touser":"OPENID","msgtype":"wxcard","wxcard":{"card_id":"CARD_ID"}}'),
    (
        "miniprogrampage",
        {"title": "T", "appid": "APPID", "pagepath": "pages/index/index", "thumb_media_id": "THUMB_ID"},
        '{"touser":"OPENID","msgtype":"miniprogrampage","miniprogrampage":{"title":"T","appid":"APPID","pagepath":"pages/index/index","thumb_media_id":"THUMB_ID"}}',
    ),
]


def test_there_are_exactly_the_eleven_types_of_the_reference():
    assert sorted(builders.MSGTYPES) == sorted(msgtype for msgtype, _data, _wire in EXAMPLES)


@pytest.mark.parametrize(("msgtype", "data", "wire"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_each_type_serializes_to_the_exact_body_of_the_reference(msgtype, data, wire):
    assert serialize(build(msgtype, openid="OPENID", data=data)) == wire.encode("utf-8")


@pytest.mark.parametrize(("msgtype", "data", "wire"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_the_payload_is_a_nested_object_under_the_msgtype_key_and_nothing_else(msgtype, data, wire):
    body = json.loads(serialize(build(msgtype, openid="OPENID", data=data)))
    assert body["msgtype"] == msgtype
    assert isinstance(body[msgtype], dict)
    others = set(builders.MSGTYPES) - {msgtype}
    assert not others & set(body)
    # No payload value anywhere is itself a JSON document (double encoding, §2.5).
    for value in _strings(body[msgtype]):
        assert not value.lstrip().startswith(("{", "["))


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    else:
        yield node


def test_kf_account_is_added_as_customservice_object():
    body = build("text", openid="OPENID", data={"content": "Hello"}, kf_account="agent1@oa_wechat_id")
    assert serialize(body) == (
        b'{"touser":"OPENID","msgtype":"text","text":{"content":"Hello"},'
        b'"customservice":{"kf_account":"agent1@oa_wechat_id"}}'
    )


def test_kf_account_must_name_the_oa():
    with pytest.raises(BuildError, match="前缀@公众号微信号"):
        build("text", openid="OPENID", data={"content": "x"}, kf_account="agent1")


def test_a_video_is_sent_as_video_never_as_voice():
    body = build("video", openid="O", data={"media_id": "M"})
    assert body["msgtype"] == "video" and "voice" not in body and body["video"] == {"media_id": "M"}


def test_music_goes_under_the_music_key_never_video():
    body = build("music", openid="O", data={"musicurl": "u", "hqmusicurl": "h", "thumb_media_id": "t"})
    assert body["msgtype"] == "music" and "video" not in body
    assert body["music"] == {"musicurl": "u", "hqmusicurl": "h", "thumb_media_id": "t"}


def test_a_payload_given_as_a_json_string_is_refused_not_double_encoded():
    with pytest.raises(BuildError, match="必须是一个对象"):
        build("text", openid="O", data='{"content": "hi"}')


def test_a_payload_field_given_as_an_object_is_refused():
    with pytest.raises(BuildError, match="必须是文字"):
        build("text", openid="O", data={"content": {"content": "hi"}})


def test_chinese_emoji_and_links_go_out_as_raw_utf8_without_escapes():
    content = '你好 😀 <a href="https://example.com/?a=1&b=2">订单</a>'
    wire = serialize(build("text", openid="O", data={"content": content}))
    assert b"\\u" not in wire
    assert content.encode("utf-8") in wire.replace(b'\\"', b'"')
    assert json.loads(wire)["text"]["content"] == content


def test_text_of_2048_bytes_passes_and_2049_is_refused_with_the_count():
    build("text", openid="O", data={"content": "a" * 2048})
    with pytest.raises(BuildError, match="2049 字节"):
        build("text", openid="O", data={"content": "a" * 2049})


def test_text_length_is_counted_in_utf8_bytes_not_characters():
    build("text", openid="O", data={"content": "好" * 682})  # 2046 bytes
    with pytest.raises(BuildError, match="最多 2048 字节"):
        build("text", openid="O", data={"content": "好" * 683})  # 2049 bytes


@pytest.mark.parametrize("content", ["", "   ", None])
def test_empty_text_is_refused(content):
    with pytest.raises(BuildError, match="缺少必填字段 content"):
        build("text", openid="O", data={"content": content})


def test_news_needs_exactly_one_article():
    article = {"title": "T", "url": "https://e.example/"}
    build("news", openid="O", data={"articles": [article]})
    with pytest.raises(BuildError, match="只能包含 1 篇文章，现在有 2 篇"):
        build("news", openid="O", data={"articles": [article, article]})
    with pytest.raises(BuildError, match="现在有 0 篇"):
        build("news", openid="O", data={"articles": []})
    with pytest.raises(BuildError, match="必须是一个列表"):
        build("news", openid="O", data={"articles": article})


def test_news_links_must_be_http_urls():
    with pytest.raises(BuildError, match="picurl 必须是以 http"):
        build("news", openid="O", data={"articles": [{"title": "T", "url": "https://e/", "picurl": "MEDIA_ID"}]})


@pytest.mark.parametrize(
    ("msgtype", "data", "missing"),
    [
        ("image", {}, "media_id"),
        ("voice", {"media_id": ""}, "media_id"),
        ("video", {"title": "T"}, "media_id"),
        ("music", {"musicurl": "u", "hqmusicurl": "h"}, "thumb_media_id"),
        ("mpnews", {}, "media_id"),
        ("mpnewsarticle", {}, "article_id"),
        ("wxcard", {}, "card_id"),
        ("miniprogrampage", {"title": "T", "appid": "A", "thumb_media_id": "M"}, "pagepath"),
        ("news", {"articles": [{"title": "T"}]}, "url"),
        ("msgmenu", {"list": [{"id": "1"}]}, "content"),
    ],
)
def test_required_fields_are_named_when_missing(msgtype, data, missing):
    with pytest.raises(BuildError, match=f"缺少必填字段 {missing}"):
        build(msgtype, openid="O", data=data)


def test_unknown_fields_are_refused_rather_than_sent():
    with pytest.raises(BuildError, match="不认识的字段：text"):
        build("text", openid="O", data={"text": {"content": "hi"}, "content": "hi"})


def test_unknown_msgtype_is_refused_with_the_list_of_types():
    with pytest.raises(BuildError, match="不支持的消息类型“link”"):
        build("link", openid="O", data={})


def test_msgmenu_needs_options_with_distinct_ids():
    with pytest.raises(BuildError, match="至少需要一个选项"):
        build("msgmenu", openid="O", data={"list": []})
    with pytest.raises(BuildError, match="不能重复"):
        build("msgmenu", openid="O", data={"list": [{"id": "1", "content": "a"}, {"id": "1", "content": "b"}]})


def test_build_errors_are_value_errors():
    assert issubclass(BuildError, ValueError)


def test_check_shape_rejects_the_tutorial_bodies():
    with pytest.raises(BuildError):
        builders.check_shape({"touser": "O", "msgtype": "voice", "video": {"media_id": "M"}})
    with pytest.raises(BuildError):
        builders.check_shape({"touser": "O", "msgtype": "music", "video": {"title": "T"}})
    with pytest.raises(BuildError):
        builders.check_shape({"touser": "O", "msgtype": "text", "text": '{"content":"hi"}'})


def test_preview_is_short_and_labelled():
    assert builders.preview("text", {"content": "你好"}) == "你好"
    assert builders.preview("image", {"media_id": "M"}) == "[图片]"
    assert builders.preview("news", {"articles": [{"title": "新品"}]}) == "[图文] 新品"


def test_a_stored_body_with_shuffled_keys_is_sent_in_the_reference_order():
    # PostgreSQL's jsonb returns keys sorted by length, not as written.
    stored = {"text": {"content": "Hello"}, "touser": "OPENID", "msgtype": "text"}
    assert serialize(builders.canonical(stored)) == b'{"touser":"OPENID","msgtype":"text","text":{"content":"Hello"}}'
