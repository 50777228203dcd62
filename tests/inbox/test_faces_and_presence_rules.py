"""Small pure rules: WeChat face codes in text (§2.4), and presence that expires on its own."""

from datetime import timedelta

from django.utils import timezone

from inbox import faces, presence
from inbox.models import Presence


def test_face_codes_become_emoji_with_the_code_kept():
    html = faces.render("好的/::D 谢谢[呲牙]")
    assert html == (
        '好的<span class="face" title="/::D 呲牙" role="img" aria-label="呲牙">😁</span> 谢谢'
        '<span class="face" title="[呲牙] 呲牙" role="img" aria-label="呲牙">😁</span>'
    )


def test_text_around_faces_is_escaped_even_when_a_code_contains_markup_characters():
    html = faces.render("<script>alert(1)</script>/::<")
    assert "<script>" not in html
    assert html.startswith("&lt;script&gt;alert(1)&lt;/script&gt;")
    assert 'title="/::&lt; 流泪"' in html and "😢" in html


def test_the_longest_code_wins_and_unknown_brackets_stay_text():
    assert "🥱" in faces.render("/::-O")  # not "/::-" followed by "O"
    assert faces.render("[不存在的表情] 🙂") == "[不存在的表情] 🙂"


def test_presence_rows_expire_on_their_own(conversation, agent, colleague):
    now = timezone.now()
    presence.arrive(user=agent, conversation_id=conversation.pk, channel_name="chan-a", now=now)
    presence.typing(user=colleague, conversation_id=conversation.pk, channel_name="chan-b", now=now)
    seen = presence.viewers(conversation.pk, now=now + timedelta(seconds=1))
    assert {v["name"]: v["typing"] for v in seen} == {"小李": False, "小王": True}

    later = now + presence.TYPING_TTL + timedelta(seconds=1)
    assert {v["name"]: v["typing"] for v in presence.viewers(conversation.pk, now=later)} == {
        "小李": False,
        "小王": False,
    }
    gone = now + presence.VIEWING_TTL + timedelta(seconds=1)
    assert presence.viewers(conversation.pk, now=gone) == []
    # The next arrival sweeps what expired.
    presence.arrive(user=agent, conversation_id=conversation.pk, channel_name="chan-c", now=gone)
    assert list(Presence.objects.values_list("channel_name", flat=True)) == ["chan-c"]


def test_two_tabs_of_one_agent_count_once(conversation, agent):
    now = timezone.now()
    presence.arrive(user=agent, conversation_id=conversation.pk, channel_name="tab-1", now=now)
    presence.arrive(user=agent, conversation_id=conversation.pk, channel_name="tab-2", now=now)
    assert len(presence.viewers(conversation.pk, now=now)) == 1
    presence.leave(conversation_id=conversation.pk, channel_name="tab-1")
    assert [v["name"] for v in presence.viewers(conversation.pk, now=now)] == ["小李"]
