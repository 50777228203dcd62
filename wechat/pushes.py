"""Parse a push (§6) into a typed, frozen object at the edge.

Nothing inside the console sees raw XML dicts: the webhook hands one of these
objects to `inbound.receive`. A type we don't know becomes `UnknownPush`, stored
raw, never dropped.
"""

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

_DANGEROUS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class MalformedPush(ValueError):
    """The body is not a push we can read; the webhook answers 400."""


def parse_xml(body):
    """XML bytes → {tag: text} of the top level, plus nested elements as dicts.

    DOCTYPE and entity declarations are refused outright (billion laughs,
    external entities), before and by the hardened parser.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not body or not body.strip():
        raise MalformedPush("empty body")
    if _DANGEROUS.search(body):
        raise MalformedPush("DOCTYPE or ENTITY declaration")
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise MalformedPush(f"malformed XML: {exc}") from exc
    if root.tag != "xml":
        raise MalformedPush(f"root element is <{root.tag}>, expected <xml>")
    return _element_to_dict(root)


def _element_to_dict(element):
    out = {}
    for child in element:
        if len(child):
            value = _element_to_dict(child)
            # Repeated children (e.g. SendPicsInfo/PicList/item) become lists.
            if child.tag in out:
                prev = out[child.tag]
                out[child.tag] = prev + [value] if isinstance(prev, list) else [prev, value]
                continue
        else:
            value = child.text or ""
        out[child.tag] = value
    return out


@dataclass(frozen=True)
class Push:
    to_user: str = ""
    from_user: str = ""
    create_time: int = 0
    msg_type: str = ""
    msg_id: str | None = None
    event: str = ""
    msg_data_id: str = ""
    idx: str = ""

    @property
    def sent_at(self):
        return datetime.fromtimestamp(self.create_time, tz=UTC)

    @property
    def is_event(self):
        return self.msg_type == "event"

    def text(self):
        """Plain words for previews and search."""
        return ""

    def data(self):
        """The type-specific fields, for the JSON column."""
        base = {f.name for f in dataclasses.fields(Push)}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in base}

    media_id = ""


@dataclass(frozen=True)
class TextMessage(Push):
    content: str = ""
    bizmsgmenuid: str = ""  # a click on a msgmenu choice (§6.3)

    def text(self):
        return self.content


@dataclass(frozen=True)
class ImageMessage(Push):
    pic_url: str = ""
    media_id: str = ""

    def text(self):
        return "[图片]"


@dataclass(frozen=True)
class VoiceMessage(Push):
    media_id: str = ""
    format: str = ""
    recognition: str = ""

    def text(self):
        return f"[语音] {self.recognition}".strip()


@dataclass(frozen=True)
class VideoMessage(Push):
    media_id: str = ""
    thumb_media_id: str = ""

    def text(self):
        return "[视频]" if self.msg_type == "video" else "[小视频]"


@dataclass(frozen=True)
class LocationMessage(Push):
    latitude: str = ""
    longitude: str = ""
    scale: str = ""
    label: str = ""

    def text(self):
        return f"[位置] {self.label}".strip()


@dataclass(frozen=True)
class LinkMessage(Push):
    title: str = ""
    description: str = ""
    url: str = ""

    def text(self):
        return f"[链接] {self.title}".strip()


@dataclass(frozen=True)
class SubscribeEvent(Push):
    event_key: str = ""
    ticket: str = ""

    @property
    def scene(self):
        """The QR scene when the follow came from a parametric code (`qrscene_` prefix)."""
        return self.event_key[len("qrscene_") :] if self.event_key.startswith("qrscene_") else ""

    def text(self):
        return "[关注]" + (f" 扫码场景 {self.scene}" if self.scene else "")


@dataclass(frozen=True)
class UnsubscribeEvent(Push):
    def text(self):
        return "[取消关注]"


@dataclass(frozen=True)
class ScanEvent(Push):
    event_key: str = ""
    ticket: str = ""

    def text(self):
        return f"[扫码] {self.event_key}"


@dataclass(frozen=True)
class LocationEvent(Push):
    latitude: str = ""
    longitude: str = ""
    precision: str = ""

    def text(self):
        return "[上报位置]"


@dataclass(frozen=True)
class MenuEvent(Push):
    """CLICK, VIEW and view_miniprogram."""

    event_key: str = ""
    menu_id: str = ""

    def text(self):
        labels = {"CLICK": "点击菜单", "VIEW": "打开链接", "view_miniprogram": "打开小程序"}
        return f"[{labels.get(self.event, self.event)}] {self.event_key}"


@dataclass(frozen=True)
class ScanCodeEvent(Push):
    event_key: str = ""
    scan_type: str = ""
    scan_result: str = ""

    def text(self):
        return f"[扫一扫] {self.scan_result}"


@dataclass(frozen=True)
class MenuPictureEvent(Push):
    """pic_sysphoto, pic_photo_or_album, pic_weixin."""

    event_key: str = ""
    count: int = 0
    pic_md5s: tuple = ()

    def text(self):
        return f"[发图菜单] {self.count} 张"


@dataclass(frozen=True)
class LocationSelectEvent(Push):
    event_key: str = ""
    latitude: str = ""
    longitude: str = ""
    scale: str = ""
    label: str = ""
    poiname: str = ""

    def text(self):
        return f"[选择位置] {self.label}".strip()


@dataclass(frozen=True)
class JobFinishEvent(Push):
    """TEMPLATESENDJOBFINISH and MASSSENDJOBFINISH."""

    job_msg_id: str = ""
    status: str = ""
    total_count: str = ""
    filter_count: str = ""
    sent_count: str = ""
    error_count: str = ""

    def text(self):
        return f"[{self.event}] {self.status}"


@dataclass(frozen=True)
class KfSessionEvent(Push):
    kf_account: str = ""
    from_kf_account: str = ""
    to_kf_account: str = ""

    def text(self):
        return f"[{self.event}] {self.kf_account or self.to_kf_account}"


@dataclass(frozen=True)
class SubscribeMsgEvent(Push):
    """subscribe_msg_popup_event / _change_ / _sent_: nested List items."""

    items: tuple = ()

    def text(self):
        return f"[{self.event}]"


@dataclass(frozen=True)
class UnknownPush(Push):
    """A message type or event we don't know: kept with all its fields."""

    fields: dict = field(default_factory=dict)

    def text(self):
        return f"[{self.event or self.msg_type}]"


def _s(d, key):
    value = d.get(key, "")
    return value if isinstance(value, str) else ""


def _items(value):
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, dict) else []


_MESSAGE_BUILDERS = {
    "text": lambda d: TextMessage(content=_s(d, "Content"), bizmsgmenuid=_s(d, "bizmsgmenuid")),
    "image": lambda d: ImageMessage(pic_url=_s(d, "PicUrl"), media_id=_s(d, "MediaId")),
    "voice": lambda d: VoiceMessage(
        media_id=_s(d, "MediaId"), format=_s(d, "Format"), recognition=_s(d, "Recognition")
    ),
    "video": lambda d: VideoMessage(media_id=_s(d, "MediaId"), thumb_media_id=_s(d, "ThumbMediaId")),
    "shortvideo": lambda d: VideoMessage(media_id=_s(d, "MediaId"), thumb_media_id=_s(d, "ThumbMediaId")),
    "location": lambda d: LocationMessage(
        latitude=_s(d, "Location_X"), longitude=_s(d, "Location_Y"), scale=_s(d, "Scale"), label=_s(d, "Label")
    ),
    "link": lambda d: LinkMessage(title=_s(d, "Title"), description=_s(d, "Description"), url=_s(d, "Url")),
}


def _scan_code(d):
    info = d.get("ScanCodeInfo") if isinstance(d.get("ScanCodeInfo"), dict) else {}
    return ScanCodeEvent(
        event_key=_s(d, "EventKey"), scan_type=_s(info, "ScanType"), scan_result=_s(info, "ScanResult")
    )


def _pictures(d):
    info = d.get("SendPicsInfo") if isinstance(d.get("SendPicsInfo"), dict) else {}
    pic_list = info.get("PicList") if isinstance(info.get("PicList"), dict) else {}
    md5s = tuple(_s(item, "PicMd5Sum") for item in _items(pic_list.get("item")))
    count = _s(info, "Count")
    return MenuPictureEvent(
        event_key=_s(d, "EventKey"), count=int(count) if count.isdigit() else len(md5s), pic_md5s=md5s
    )


def _location_select(d):
    info = d.get("SendLocationInfo") if isinstance(d.get("SendLocationInfo"), dict) else {}
    return LocationSelectEvent(
        event_key=_s(d, "EventKey"),
        latitude=_s(info, "Location_X"),
        longitude=_s(info, "Location_Y"),
        scale=_s(info, "Scale"),
        label=_s(info, "Label"),
        poiname=_s(info, "Poiname"),
    )


def _job_finish(d):
    return JobFinishEvent(
        job_msg_id=_s(d, "MsgID"),
        status=_s(d, "Status"),
        total_count=_s(d, "TotalCount"),
        filter_count=_s(d, "FilterCount"),
        sent_count=_s(d, "SentCount"),
        error_count=_s(d, "ErrorCount"),
    )


def _subscribe_msg(d):
    items = []
    for key, value in d.items():
        if key.startswith("SubscribeMsg"):
            lst = value.get("List") if isinstance(value, dict) else None
            items.extend(tuple(sorted(item.items())) for item in _items(lst))
    return SubscribeMsgEvent(items=tuple(items))


_EVENT_BUILDERS = {
    "subscribe": lambda d: SubscribeEvent(event_key=_s(d, "EventKey"), ticket=_s(d, "Ticket")),
    "unsubscribe": lambda d: UnsubscribeEvent(),
    "SCAN": lambda d: ScanEvent(event_key=_s(d, "EventKey"), ticket=_s(d, "Ticket")),
    "LOCATION": lambda d: LocationEvent(
        latitude=_s(d, "Latitude"), longitude=_s(d, "Longitude"), precision=_s(d, "Precision")
    ),
    "CLICK": lambda d: MenuEvent(event_key=_s(d, "EventKey"), menu_id=_s(d, "MenuId")),
    "VIEW": lambda d: MenuEvent(event_key=_s(d, "EventKey"), menu_id=_s(d, "MenuId")),
    "view_miniprogram": lambda d: MenuEvent(event_key=_s(d, "EventKey"), menu_id=_s(d, "MenuId")),
    "scancode_push": _scan_code,
    "scancode_waitmsg": _scan_code,
    "pic_sysphoto": _pictures,
    "pic_photo_or_album": _pictures,
    "pic_weixin": _pictures,
    "location_select": _location_select,
    "TEMPLATESENDJOBFINISH": _job_finish,
    "MASSSENDJOBFINISH": _job_finish,
    "kf_create_session": lambda d: KfSessionEvent(kf_account=_s(d, "KfAccount")),
    "kf_close_session": lambda d: KfSessionEvent(kf_account=_s(d, "KfAccount")),
    "kf_switch_session": lambda d: KfSessionEvent(
        from_kf_account=_s(d, "FromKfAccount"), to_kf_account=_s(d, "ToKfAccount")
    ),
    "subscribe_msg_popup_event": _subscribe_msg,
    "subscribe_msg_change_event": _subscribe_msg,
    "subscribe_msg_sent_event": _subscribe_msg,
}


def parse_push(body):
    """XML bytes → a typed Push. Raises MalformedPush."""
    d = parse_xml(body)
    return push_from_dict(d)


def push_from_dict(d):
    msg_type = _s(d, "MsgType")
    from_user = _s(d, "FromUserName")
    create_time = _s(d, "CreateTime").strip()
    if not msg_type or not from_user:
        raise MalformedPush("MsgType and FromUserName are required")
    try:
        create_time = int(create_time)
    except ValueError as exc:
        raise MalformedPush("CreateTime is not an integer") from exc
    msg_id = _s(d, "MsgId").strip() or None
    if msg_id is not None and not msg_id.isdigit():
        raise MalformedPush("MsgId is not an integer")
    event = _s(d, "Event") if msg_type == "event" else ""
    if msg_type == "event":
        builder = _EVENT_BUILDERS.get(event)
        msg_id = None  # events are de-duplicated by sender, time and event (§6.5)
    else:
        builder = _MESSAGE_BUILDERS.get(msg_type)
    if builder is None:
        known = {"ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Event", "MsgDataId", "Idx"}
        specific = UnknownPush(fields={k: v for k, v in d.items() if k not in known})
    else:
        specific = builder(d)
    return dataclasses.replace(
        specific,
        to_user=_s(d, "ToUserName"),
        from_user=from_user,
        create_time=create_time,
        msg_type=msg_type,
        msg_id=msg_id,
        event=event,
        msg_data_id=_s(d, "MsgDataId"),
        idx=_s(d, "Idx"),
    )
