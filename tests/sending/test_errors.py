from wechat import errors


def test_every_sender_errcode_of_the_reference_has_a_chinese_reason():
    codes = [
        -1,
        40001,
        40003,
        40004,
        40007,
        40008,
        40014,
        40033,
        40121,
        40200,
        42001,
        43004,
        43019,
        44002,
        44004,
        45002,
        45008,
        45009,
        45011,
        45015,
        45047,
        45162,
        47001,
        48001,
        48002,
        48004,
        50002,
        65400,
        65401,
        65402,
    ]
    for code in codes:
        text = errors.describe(code)
        assert text and "错误码" not in text, code
        assert any("\u4e00" <= ch <= "\u9fff" for ch in text), code


def test_unknown_errcode_says_so_with_the_number():
    assert errors.describe(99999) == "微信返回错误码 99999，请查阅微信文档"
    assert errors.helps(99999) == errors.NEVER


def test_what_helps_follows_the_table():
    assert errors.helps(-1) == errors.RETRY
    assert errors.helps(45011) == errors.RETRY
    for code in (40001, 40014, 42001):
        assert errors.helps(code) == errors.TOKEN
    for code in (45015, 45047, 43004, 40003, 45009):
        assert errors.helps(code) == errors.NEVER


def test_api_error_carries_code_rid_and_retry_decision():
    exc = errors.APIError(-1, "system busy rid: 6523-abc", "6523-abc")
    assert exc.retry and not exc.token_invalid and exc.rid == "6523-abc"
    assert str(exc) == errors.describe(-1)
    assert errors.APIError(42001).token_invalid
    assert not errors.APIError(45015).retry


def test_transport_errors_say_whether_the_request_left():
    assert errors.NotSent().retry
    assert errors.ServerError(502).retry
    assert not errors.Ambiguous().retry
    assert errors.TokenUnavailable(errors.Ambiguous()).retry  # the message itself was never sent
    assert not errors.TokenUnavailable(errors.APIError(40125)).retry
