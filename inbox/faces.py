"""WeChat's own faces: followers' text carries codes like `/::D` or `[呲牙]` (§2.4), which
the WeChat client draws as pictures. The console shows the nearest emoji, with
the code kept as a tooltip, so agents read the mood the follower meant.
"""

import re

from django.utils.html import escape

# code, name, emoji — the classic set in the order WeChat's picker shows it.
FACES = [
    ("/::)", "微笑", "🙂"),
    ("/::~", "撇嘴", "😣"),
    ("/::B", "色", "😍"),
    ("/::|", "发呆", "😳"),
    ("/:8-)", "得意", "😎"),
    ("/::<", "流泪", "😢"),
    ("/::$", "害羞", "😊"),
    ("/::X", "闭嘴", "🤐"),
    ("/::Z", "睡", "😴"),
    ("/::'(", "大哭", "😭"),
    ("/::-|", "尴尬", "😅"),
    ("/::@", "发怒", "😡"),
    ("/::P", "调皮", "😜"),
    ("/::D", "呲牙", "😁"),
    ("/::O", "惊讶", "😮"),
    ("/::(", "难过", "🙁"),
    ("/::+", "酷", "😎"),
    ("/:--b", "冷汗", "😓"),
    ("/::Q", "抓狂", "😫"),
    ("/::T", "吐", "🤮"),
    ("/:,@P", "偷笑", "🤭"),
    ("/:,@-D", "愉快", "😄"),
    ("/::d", "白眼", "🙄"),
    ("/:,@o", "傲慢", "😤"),
    ("/:|-)", "困", "😪"),
    ("/::!", "惊恐", "😱"),
    ("/::L", "流汗", "😥"),
    ("/::>", "憨笑", "😆"),
    ("/::,@", "悠闲", "😌"),
    ("/:,@f", "奋斗", "💪"),
    ("/::-S", "咒骂", "🤬"),
    ("/:?", "疑问", "❓"),
    ("/:,@x", "嘘", "🤫"),
    ("/:,@@", "晕", "😵"),
    ("/:,@!", "衰", "😩"),
    ("/:!!!", "骷髅", "💀"),
    ("/:xx", "敲打", "🔨"),
    ("/:bye", "再见", "👋"),
    ("/:wipe", "擦汗", "😓"),
    ("/:dig", "抠鼻", "👃"),
    ("/:handclap", "鼓掌", "👏"),
    ("/:B-)", "坏笑", "😏"),
    ("/:<@", "左哼哼", "😤"),
    ("/:@>", "右哼哼", "😤"),
    ("/::-O", "哈欠", "🥱"),
    ("/:>-|", "鄙视", "😒"),
    ("/:P-(", "委屈", "🥺"),
    ("/::'|", "快哭了", "😿"),
    ("/:X-)", "阴险", "😈"),
    ("/::*", "亲亲", "😘"),
    ("/:8*", "可怜", "🥺"),
    ("/:pd", "菜刀", "🔪"),
    ("/:<W>", "西瓜", "🍉"),
    ("/:beer", "啤酒", "🍺"),
    ("/:coffee", "咖啡", "☕"),
    ("/:pig", "猪头", "🐷"),
    ("/:rose", "玫瑰", "🌹"),
    ("/:fade", "凋谢", "🥀"),
    ("/:showlove", "嘴唇", "💋"),
    ("/:heart", "爱心", "❤️"),
    ("/:break", "心碎", "💔"),
    ("/:cake", "蛋糕", "🎂"),
    ("/:bome", "炸弹", "💣"),
    ("/:shit", "便便", "💩"),
    ("/:moon", "月亮", "🌙"),
    ("/:sun", "太阳", "☀️"),
    ("/:hug", "拥抱", "🤗"),
    ("/:strong", "强", "👍"),
    ("/:weak", "弱", "👎"),
    ("/:share", "握手", "🤝"),
    ("/:v", "胜利", "✌️"),
    ("/:@)", "抱拳", "🙏"),
    ("/:jj", "勾引", "👉"),
    ("/:@@", "拳头", "👊"),
    ("/:ok", "OK", "👌"),
    ("/:jump", "跳跳", "💃"),
    ("/:shake", "发抖", "🥶"),
    ("/:<O>", "怄火", "😠"),
    ("/:circle", "转圈", "💫"),
]
# Newer faces exist only as bracketed names.
EXTRA_NAMES = {
    "捂脸": "🤦",
    "奸笑": "😏",
    "机智": "🤓",
    "皱眉": "😟",
    "耶": "✌️",
    "嘿哈": "😄",
    "笑脸": "😄",
    "生病": "😷",
    "破涕为笑": "😂",
    "吃瓜": "🍉",
    "加油": "💪",
    "汗": "😓",
    "天啊": "😱",
    "社会社会": "🤙",
    "旺柴": "🐶",
    "好的": "👌",
    "哇": "🤩",
    "红包": "🧧",
    "發": "🀄",
    "福": "🧧",
}

_BY_CODE = {code: (name, emoji) for code, name, emoji in FACES}
_BY_NAME = {f"[{name}]": (name, emoji) for _code, name, emoji in FACES}
_BY_NAME.update({f"[{name}]": (name, emoji) for name, emoji in EXTRA_NAMES.items()})
_LOOKUP = {**_BY_CODE, **_BY_NAME}
# Longest first so "/::-O" wins over "/::-".
_PATTERN = re.compile("|".join(re.escape(token) for token in sorted(_LOOKUP, key=len, reverse=True)))


def render(text):
    """Escaped HTML of `text` with WeChat face codes drawn as emoji (code kept as the title)."""
    out = []
    position = 0
    for match in _PATTERN.finditer(text or ""):
        out.append(escape(text[position : match.start()]))
        token = match.group(0)
        name, emoji = _LOOKUP[token]
        out.append(
            f'<span class="face" title="{escape(token)} {escape(name)}" role="img" '
            f'aria-label="{escape(name)}">{emoji}</span>'
        )
        position = match.end()
    out.append(escape((text or "")[position:]))
    return "".join(out)
