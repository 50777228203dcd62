"""WeChat errcodes as the sender sees them (../shared/wechat-api.md §1.4, §3.2, §4, §8, §10.2).

Every errcode maps to a plain-language Chinese reason and to what helps:
retrying later, refreshing the token once, or nothing. The exceptions raised by
`wechat.client` carry that decision so callers never re-derive it from numbers.
No exception text ever contains a token or a secret.
"""

# What a caller should do about an error.
RETRY = "retry"  # transient: the request was not acted on; try again with back-off
TOKEN = "token"  # the access token is bad: refresh once (only if it is still ours), replay once
NEVER = "never"  # permanent for this request: retrying cannot help

# errcode → (reason, what helps). Reasons say what happened and what to do.
TABLE = {
    0: ("成功", NEVER),
    -1: ("微信系统繁忙，稍后自动重试", RETRY),
    40001: ("access_token 无效或不是最新（可能被其他程序刷新），或 AppSecret 错误", TOKEN),
    40002: ("grant_type 不正确（程序缺陷）", NEVER),
    40003: ("OpenID 无效，或不是本公众号的粉丝", NEVER),
    40004: ("素材类型不对（例如小程序卡片封面必须是图片）", NEVER),
    40007: ("media_id 无效或已过期（临时素材 3 天后失效），请重新上传素材后再发", NEVER),
    40008: ("消息类型无效（程序缺陷）", NEVER),
    40013: ("AppID 无效，请检查公众号配置", NEVER),
    40014: ("access_token 无效", TOKEN),
    40033: ("请求含有 \\uXXXX 转义字符（程序缺陷）", NEVER),
    40121: ("media_id 类型不对，请重新上传素材后再发", NEVER),
    40125: ("AppSecret 无效，请检查公众号配置（是否已重置）", NEVER),
    40164: ("服务器 IP 不在公众号的 API IP 白名单中，请在公众平台添加", NEVER),
    40200: ("公众号类型不支持此功能（例如未认证账号不能发菜单消息）", NEVER),
    40243: ("AppSecret 已被冻结，请在公众平台解冻", NEVER),
    41001: ("缺少 access_token（程序缺陷）", NEVER),
    41002: ("缺少 AppID（程序缺陷）", NEVER),
    41004: ("缺少 AppSecret，请检查公众号配置", NEVER),
    41006: ("缺少 media_id", NEVER),
    42001: ("access_token 已过期", TOKEN),
    43004: ("粉丝未关注公众号（已取消关注）", NEVER),
    43019: ("粉丝已被公众号拉黑，请先移出黑名单", NEVER),
    44002: ("请求内容为空（程序缺陷）", NEVER),
    44004: ("文本内容为空", NEVER),
    45002: ("消息内容过长（文本不超过 2048 字节）", NEVER),
    45008: ("图文消息超过 1 篇", NEVER),
    45009: ("接口今日调用次数已用完，请联系运维清零（clear_quota）或明天再试", NEVER),
    45011: ("接口调用太频繁，一分钟后自动重试", RETRY),
    45015: ("已超出回复时限或粉丝已取消关注，需等待粉丝再次互动", NEVER),
    45047: ("本次窗口的客服消息条数已用完，需等待粉丝再次互动", NEVER),
    45072: ("输入状态命令无效（程序缺陷）", NEVER),
    45080: ("30 秒内与粉丝没有消息往来，无法显示“正在输入”", NEVER),
    45081: ("已在“正在输入”状态", NEVER),
    45162: ("消息结构或字段类型不对（程序缺陷）", NEVER),
    47001: ("JSON 格式错误（程序缺陷）", NEVER),
    48001: ("公众号没有此接口权限（未认证或权限未开通）", NEVER),
    48002: ("粉丝已拒收公众号消息", NEVER),
    48004: ("此接口已被封禁", NEVER),
    50002: ("粉丝账号受限", NEVER),
    65400: ("未开启客服功能", NEVER),
    65401: ("客服账号无效", NEVER),
    65402: ("客服账号尚未绑定微信号", NEVER),
}

TOKEN_INVALID = frozenset(code for code, (_reason, helps) in TABLE.items() if helps == TOKEN)
WINDOW_CLOSED = 45015
QUOTA_USED = 45047
NOT_SUBSCRIBED = 43004
TYPING_QUIET = frozenset({45080, 45081})

# Transport failures, described for agents without leaking URLs.
NOT_SENT_TEXT = "无法连接微信服务器（请求未发出），稍后自动重试"
SERVER_ERROR_TEXT = "微信服务器暂时出错（HTTP {status}），稍后自动重试"
AMBIGUOUS_TEXT = "请求已发出但没有收到微信的答复，消息可能已经送达；为避免重复不会自动重发，请确认后手动重发"
LEASE_EXPIRED_TEXT = "发送进程在等待微信答复时中断，消息可能已经送达；为避免重复不会自动重发，请确认后手动重发"
BAD_RESPONSE_TEXT = "微信返回了无法解析的内容（HTTP {status}）"


def describe(errcode):
    """A plain-language reason for `errcode` (Chinese)."""
    try:
        code = int(errcode)
    except (TypeError, ValueError):
        return f"未知错误（{errcode}）"
    if code in TABLE:
        return TABLE[code][0]
    return f"微信返回错误码 {code}，请查阅微信文档"


def helps(errcode):
    """RETRY, TOKEN or NEVER for `errcode`; unknown codes are permanent (§10.2: the server is the final word)."""
    entry = TABLE.get(errcode)
    return entry[1] if entry else NEVER


class WeChatError(Exception):
    """Base of everything `wechat.client` raises. `retry` says whether trying again can help."""

    retry = False
    errcode = None
    errmsg = ""
    rid = ""

    @property
    def reason(self):
        return str(self)


class APIError(WeChatError):
    """WeChat answered with a non-zero errcode: it read the request and refused it."""

    def __init__(self, errcode, errmsg="", rid=""):
        self.errcode = int(errcode)
        self.errmsg = errmsg
        self.rid = rid
        self.retry = helps(self.errcode) == RETRY
        self.token_invalid = self.errcode in TOKEN_INVALID
        super().__init__(describe(self.errcode))


class NotSent(WeChatError):
    """The request never reached WeChat (refused or failed connect): retrying cannot duplicate."""

    retry = True

    def __init__(self, detail=""):
        self.detail = detail
        super().__init__(NOT_SENT_TEXT)


class ServerError(WeChatError):
    """HTTP 5xx from WeChat's front end: retried with back-off (§10.2)."""

    retry = True

    def __init__(self, status):
        self.status = status
        super().__init__(SERVER_ERROR_TEXT.format(status=status))


class Ambiguous(WeChatError):
    """The request was sent but no answer came: WeChat may have acted on it (§10.2). Never retried."""

    retry = False

    def __init__(self, detail=""):
        self.detail = detail
        super().__init__(AMBIGUOUS_TEXT)


class BadResponse(WeChatError):
    """An answer that is not the JSON WeChat promises (e.g. a proxy's HTML page)."""

    retry = False

    def __init__(self, status):
        self.status = status
        super().__init__(BAD_RESPONSE_TEXT.format(status=status))


class TokenUnavailable(WeChatError):
    """No access token could be obtained; wraps the cause. Nothing was sent with it."""

    def __init__(self, cause):
        self.cause = cause
        self.errcode = getattr(cause, "errcode", None)
        self.errmsg = getattr(cause, "errmsg", "")
        self.rid = getattr(cause, "rid", "")
        # Whatever the token call failed with, the message itself was never
        # sent, so a transient token failure is safe to retry.
        self.retry = isinstance(cause, NotSent | ServerError | Ambiguous) or bool(getattr(cause, "retry", False))
        super().__init__(f"获取 access_token 失败：{cause}")
