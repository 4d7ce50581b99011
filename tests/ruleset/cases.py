"""For every shipped scoring rule: a message that hits it and one that does not.

The miss is the same letter without the thing the rule is about wherever that is cheap to build
(a near miss), else the plain letter. `test_rules.py` runs the table and fails when a shipped rule
is missing from it.
"""

from __future__ import annotations

from tests.ruleset.messages import LETTER, html_mail, html_page, mail, raw, with_attachment, zip_of

PLAIN = mail()
IMG = '<img src="http://img.example.com/offer.gif" width="600" height="400">'
LONG_TEXT = "<p>" + "We are writing to let you know about changes to our opening hours. " * 20 + "</p>"


def text(phrase: str) -> bytes:
    """The ordinary letter with one more paragraph."""
    return mail(LETTER + "\n" + phrase + "\n")


def subject(value: str) -> bytes:
    return mail(subject=value)


def header(**fields: str | None) -> bytes:
    return mail(headers={k.replace("_", "-"): v for k, v in fields.items()})


def received(date: str) -> dict[str, str | None]:
    """Headers for a message sent at `date` (received on 6 Aug 2002 10:55 +0100)."""
    return {"Date": date}


def links(*urls: str) -> bytes:
    return mail(LETTER + "\nSee " + " and ".join(urls) + " for details.\n")


def anchors(*pairs: tuple[str, str]) -> bytes:
    inner = " ".join(f'<a href="{href}">{label}</a>' for href, label in pairs)
    return html_mail(html_page(LONG_TEXT + "<p>" + inner + "</p>"), text=LETTER)


def page(extra: str) -> bytes:
    """An HTML-only mail with a screenful of ordinary text and `extra` at the end."""
    return html_mail(html_page(LONG_TEXT + extra))


def koi8(content_type: str) -> bytes:
    """A Russian greeting encoded in KOI8-R, declared as `content_type`."""
    return mail("Привет, " + LETTER, content_type=content_type, charset="koi8-r")


def _nested(depth: int) -> str:
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth))
    tail = "".join(f"\n--b{i}--\n" for i in reversed(range(depth)))
    return head + "Content-Type: text/plain\n\nhello" + tail


def _many_parts(count: int) -> str:
    parts = "".join("--p\nContent-Type: text/plain\n\npart\n" for _ in range(count))
    return f'Content-Type: multipart/mixed; boundary="p"\n\n{parts}--p--\n'


HEAD = ("From: Jane <jane@example.org>\nTo: tom@example.net\nSubject: hello\n"
        "Date: Tue, 06 Aug 2002 10:50:02 +0100\nMessage-ID: <1@example.org>\nMIME-Version: 1.0\n")

CASES: dict[str, tuple[bytes, bytes]] = {
    # --- headers: presence -----------------------------------------------------------------
    "MISSING_DATE": (header(Date=None), PLAIN),
    "MISSING_MSGID": (header(Message_ID=None), PLAIN),
    "MISSING_FROM": (header(From=None), PLAIN),
    "MISSING_SUBJECT": (header(Subject=None), PLAIN),
    "UNDISCLOSED_RCPTS": (header(To="undisclosed-recipients:;"), PLAIN),
    "FROM_LOCAL_DIGITS": (header(From="deals48213@example.com"), header(From="jane.m@example.com")),
    "XMAILER_BULK_TOOL": (header(X_Mailer="Group Mail Express 3.1"), header(X_Mailer="Mutt/1.4i")),
    "XMAILER_RANDOM": (header(X_Mailer="ArHA8IFlSSFNGzAMo"), header(X_Mailer="Sylpheed version 0.8.2")),
    "XMAILER_DOUBLED": (header(X_Mailer="X-Mailer: Microsoft Outlook Express 6.00"),
                        header(X_Mailer="Microsoft Outlook Express 6.00.2600.0000")),
    "PRIORITY_HIGHEST": (header(X_Priority="1 (Highest)"), header(X_Priority="3 (Normal)")),
    "MIME_NO_VERSION": (html_mail(html_page(LONG_TEXT), headers={"MIME-Version": None}),
                        header(MIME_Version=None)),
    # --- headers: shapes (checks) ----------------------------------------------------------
    "MSGID_MALFORMED": (header(Message_ID="20020806.12345.example.org"), PLAIN),
    "FORGED_OUTLOOK_MSGID": (
        header(X_Mailer="Microsoft Outlook Express 6.00.2600.0000", Message_ID="<5XK2a0.JQ9@bulk.example>"),
        header(X_Mailer="Microsoft Outlook Express 6.00.2600.0000",
               Message_ID="<001001c249e6$863c4e00$13cca341@pc.example.org>")),
    "FROM_NO_ADDRESS": (header(From="Special Offers"), PLAIN),
    "FROM_NAME_OTHER_ADDR": (header(From='"service@bank.example.com" <x7@mailer.example.net>'),
                             header(From='"jane@example.org" <jane@example.org>')),
    "FROM_EQUALS_TO": (header(From="tom@example.net"), PLAIN),
    "TO_CC_MANY": (header(To=", ".join(f"user{i}@example.net" for i in range(25))),
                   header(To=", ".join(f"user{i}@example.net" for i in range(5)))),
    "REPLYTO_OTHER_DOMAIN": (header(Reply_To="orders@replies.example.com"),
                             header(Reply_To="jane@example.org")),
    "SUBJ_ALL_CAPS": (subject("MAKE THIS SUMMER COUNT"), subject("Make this summer count")),
    "SUBJ_OBFUSCATED": (subject("Cheap V1AGRA here"), subject("Cheap MP3s here")),
    # --- headers: subject wording ----------------------------------------------------------
    "SUBJ_TRACKING_TAIL": (subject("Your summer plans          29471"), subject("Meeting in room 2041")),
    "SUBJ_ADV_LABEL": (subject("ADV: Lower your payments"), subject("Advice on payments")),
    "SUBJ_DOLLARS": (subject("Get $500 today"), subject("Budget for next year")),
    "SUBJ_FREE": (subject("Your free gift"), subject("Your freedom")),
    "SUBJ_PERCENT": (subject("Save 50% off everything"), subject("Save the date")),
    "SUBJ_EXCLAIMS": (subject("Amazing news!!"), subject("Amazing news")),
    "SUBJ_YOU_WON": (subject("You have won a prize"), subject("You have one new task")),
    "SUBJ_URGENCY": (subject("Act now before it ends"), subject("Acting on the report")),
    "SUBJ_LOANS": (subject("Refinance your mortgage"), subject("Refine the draft")),
    "SUBJ_MONEY_TALK": (subject("Make money at home"), subject("Make tea at home")),
    "SUBJ_PHARMA": (subject("Cheap viagra"), subject("Cheap flights")),
    "SUBJ_ACCOUNT_ALERT": (subject("Please verify your account"), subject("Please review the draft")),
    "SUBJ_FAKE_REPLY": (subject("Re: your request"),
                        mail(subject="Re: your request", headers={"In-Reply-To": "<1@example.net>"})),
    # --- dates -----------------------------------------------------------------------------
    "DATE_MALFORMED": (header(Date="sometime last week"), PLAIN),
    "DATE_NO_ZONE": (header(Date="Tue, 06 Aug 2002 10:50:02"), PLAIN),
    "DATE_FUTURE_3_48": (header(**received("Tue, 06 Aug 2002 20:50:02 +0100")), PLAIN),
    "DATE_FUTURE_48": (header(**received("Sat, 10 Aug 2002 10:50:02 +0100")), PLAIN),
    "DATE_PAST_4_30D": (header(**received("Tue, 23 Jul 2002 10:50:02 +0100")), PLAIN),
    "DATE_PAST_30D": (header(**received("Sun, 19 Oct 1980 10:55:16 +0000")),
                      header(Date="Sun, 19 Oct 1980 10:55:16 +0000", Received=None)),
    # --- the administrator's test message ----------------------------------------------------
    "GTUBE_TEST_MESSAGE": (text("XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"),
                           text("YJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X")),
    # --- English body ----------------------------------------------------------------------
    "MONEY_MAKE_MONEY": (text("Start making serious money this week."), text("Start making coffee.")),
    "MONEY_PER_PERIOD": (text("You could earn $5,000 per month."), text("It cost $500 in total.")),
    "MONEY_WORK_HOME": (text("Work from home and set your hours."), text("Walk from home to work.")),
    "MONEY_FREEDOM": (text("Achieve financial freedom now."), text("Achieve fine results.")),
    "MONEY_MLM": (text("Join our network marketing team."), text("Join our network team.")),
    "MONEY_MILLIONS": (text("It is worth millions of dollars."), text("It is worth a lot.")),
    "MONEY_LOW_RATES": (text("Get the lowest mortgage rates."), text("Get the latest notes.")),
    "MONEY_CREDIT_OFFER": (text("Bad credit? No problem."), text("Give credit where due.")),
    "MONEY_INVEST_TIP": (text("Our latest stock alert is out."), text("Our stock room is full.")),
    "MONEY_MANY_AMOUNTS": (text("Pay $100, $200, $300, $400 or $500 now."), text("Pay $100 now.")),
    "MONEY_CASH_BONUS": (text("Claim your cash bonus."), text("Claim your coat.")),
    "MONEY_GRANTS": (text("Get government grants you never repay."), text("Get the grant report.")),
    "URGENT_ACT_NOW": (text("Order now while you can."), text("In order to proceed.")),
    "URGENT_LIMITED": (text("This is a limited time offer."), text("This is a limited edition.")),
    "URGENT_DONT_DELAY": (text("Don't delay, reply today."), text("Don't forget the keys.")),
    "URGENT_ONCE_LIFE": (text("A once in a lifetime chance."), text("Once upon a time.")),
    "OFFER_100_FREE": (text("It is 100% free to join."), text("It is 100% done.")),
    "OFFER_NO_RISK": (text("There is no obligation at all."), text("There is no milk.")),
    "OFFER_GUARANTEE": (text("Full money-back guarantee."), text("Full money report.")),
    "OFFER_FREE_TRIAL": (text("Ask for your free trial."), text("Ask for your trial date.")),
    "OFFER_DISCOUNT": (text("Save up to 70% on all items."), text("Save the file.")),
    "OFFER_ORDER_FORM": (text("Fill in the order form below."), text("Fill in the form below.")),
    "OFFER_CLICK_HERE": (text("Click here to see it."), text("Clicking fonts are old.")),
    "OFFER_DEAR_FRIEND": (mail("Dear Friend,\n\n" + LETTER), mail("Dear Tom,\n\n" + LETTER)),
    "OFFER_WEBSITE_TRAFFIC": (text("We increase your website traffic."), text("We watch the traffic.")),
    "OFFER_EMAIL_LISTS": (text("Buy 2 million email addresses now."), text("Buy two new addresses.")),
    "OFFER_PHONE_CALL": (text("Call toll-free 1-888-555-0199 today."), text("Call me at home.")),
    "OFFER_CABLE": (text("Get a cable descrambler kit."), text("Get a cable for the printer.")),
    "OFFER_INK_TONER": (text("Inkjet cartridges at half the prices you pay."), text("Ink on paper.")),
    "OPTOUT_NOT_SPAM": (text("This message is not spam."), text("This message is not long.")),
    "OPTOUT_REMOVE_LIST": (text("To be removed from our list, write back."), text("To be honest.")),
    "OPTOUT_REPLY_REMOVE": (text("Reply with REMOVE in the subject line."), text("Reply soon.")),
    "OPTOUT_RECEIVED_BECAUSE": (text("You are receiving this email because you asked."),
                                text("You are receiving a parcel.")),
    "OPTOUT_LAW_CITED": (text("Sent under Bill 1618 Title III."), text("The bill is paid.")),
    "OPTOUT_ONE_TIME": (text("This is a one-time mailing."), text("This is a one-way street.")),
    "OPTOUT_OPT_IN_LIST": (text("You joined our opt-in list."), text("You joined our team.")),
    "OPTOUT_OPT_OUT": (text("To opt out: visit our site."), text("To go out: take the bus.")),
    "MONEY_INSURANCE": (text("Compare life insurance quotes in minutes."), text("Our insurance number.")),
    "OFFER_DEGREE": (text("Get a university degree based on your life experience."),
                     text("Get a university degree the usual way.")),
    "PHISH_VERIFY_ACCOUNT": (text("Please verify your account information."), text("Please read it.")),
    "PHISH_SUSPENDED": (text("Your account has been suspended."), text("Your account is fine.")),
    "PHISH_UNAUTHORIZED": (text("We noticed unauthorized access."), text("We noticed the rain.")),
    "PHISH_ENTER_PASSWORD": (text("Enter your password below."), text("Enter the building.")),
    "PHISH_WITHIN_HOURS": (text("Within 24 hours your account will be closed."),
                           text("Within 24 hours we land.")),
    "FRAUD_ADVANCE_FEE": (
        text("I need a foreign partner to transfer the sum of US$25,000,000 left by my late client. "
             "This is strictly confidential."),
        text("I need a partner for the project.")),
    "FRAUD_LARGE_SUM": (text("Help me transfer the funds of US$12,500,000."), text("Help me move house.")),
    "PHARMA_NAMES": (text("Buy viagra online."), text("Buy vitamins online.")),
    "PHARMA_NO_RX": (text("No prescription needed."), text("No description needed.")),
    "BODY_ENLARGE": (text("Penis enlargement pills."), text("Picture enlargement.")),
    "BODY_WEIGHT_LOSS": (text("Lose 30 pounds in a month."), text("Lost 30 minutes.")),
    "BODY_ANTI_AGING": (text("Our anti-aging formula works."), text("Our aging server works.")),
    "BODY_CASINO": (text("Play at our online casino."), text("Play at our place.")),
    "BODY_ADULT": (text("Meet hot singles tonight."), text("Meet the team tonight.")),
    "BODY_SPACED_LETTERS": (text("Read this: C O N G R A T S now"), text("Read this: A B C now")),
    "BODY_EXCLAIMS": (text("Wow!!! Look at that"), text("Wow! Look at that")),
    "BODY_DOLLAR_SIGNS": (text("Earn $$$ fast"), text("Earn $5 fast")),
    "BODY_OBFUSCATED": (text("Buy V-I-A-G-R-A and c@sh today"), text("Buy e.g. a C.V. template")),
    "BODY_MOSTLY_CAPS": (mail(LETTER.upper() * 2), PLAIN),
    # --- Russian and German body -----------------------------------------------------------
    "RU_EARN_PER_PERIOD": (text("Заработок от 500 $ в день!"), text("Заработок за прошлый год")),
    "RU_NO_INVESTMENT": (text("Бизнес без вложений"), text("Бизнес-план готов")),
    "RU_DISCOUNT": (text("Скидка до 30% на всё"), text("Отчёт за 30 дней")),
    "RU_HURRY": (text("Спешите купить"), text("Не торопитесь")),
    "RU_FREE_OFFER": (text("Бесплатная доставка по городу"), text("Доставка по городу")),
    "RU_MAILING_SERVICE": (text("Рассылка по базам e-mail"), text("Рассылка новостей проекта")),
    "RU_SEMINAR_INVITE": (text("Стоимость участия 3000 руб."), text("Участие подтверждаю")),
    "RU_UNSOLICITED_NOTE": (text("Вы получили это письмо, так как"), text("Вы получили отчёт?")),
    "RU_ACCOUNT_BLOCKED": (text("Ваш аккаунт заблокирован"), text("Ваш отчёт готов")),
    "RU_PRIZE": (text("Вы выиграли автомобиль"), text("Вы видели автомобиль?")),
    "RU_EASY_CREDIT": (text("Кредит без справок и поручителей"), text("Кредит погашен")),
    "RU_AD_WITH_PHONE": (text("Спешите! Звоните: (095) 123-45-67"), text("Звоните: (095) 123-45-67")),
    "DE_EARN_MONEY": (text("Geld verdienen von zu Hause aus"), text("Geld zurück überwiesen")),
    "DE_FREE_NO_RISK": (text("Kostenlos und unverbindlich testen"), text("Unverbindliche Antwort")),
    "DE_PRIZE": (text("Sie haben gewonnen!"), text("Sie haben Post.")),
    "DE_ACT_NOW": (text("Jetzt bestellen und sparen"), text("Jetzt geht es los")),
    "DE_DISCOUNT": (text("Heute 50% Rabatt"), text("Heute 50 Gäste")),
    "DE_UNSOLICITED_NOTE": (text("Keine weiteren E-Mails erwünscht?"), text("Keine Ahnung.")),
    "DE_ACCOUNT_BLOCKED": (text("Ihr Konto wurde gesperrt"), text("Ihr Konto ist ausgeglichen")),
    "DE_EASY_CREDIT": (text("Kredit ohne Schufa"), text("Kredit abbezahlt")),
    "DE_PILLS": (text("Potenzmittel ohne Rezept"), text("Rezept für Kuchen")),
    "DE_GET_RICH": (text("Schnell reich werden"), text("Schnell fertig werden")),
    # --- HTML ------------------------------------------------------------------------------
    "HTML_ONLY": (html_mail(html_page(LONG_TEXT)), html_mail(html_page(LONG_TEXT), text=LETTER * 3)),
    "HTML_IMAGE_ONLY_300": (html_mail(html_page(IMG + "<p>Big sale</p>")), html_mail(html_page(LONG_TEXT))),
    "HTML_IMAGE_TEXT_300_1200": (html_mail(html_page(IMG + LONG_TEXT[:700] + "</p>")),
                                 html_mail(html_page(IMG + "<p>Big sale</p>"))),
    "HTML_HIDDEN_TEXT": (page('<div style="display:none">' + "filler words " * 10
                                             + "</div>"), html_mail(html_page(LONG_TEXT))),
    "HTML_OBJECT": (page('<embed src="http://x.example.com/a.swf">'),
                    html_mail(html_page(LONG_TEXT))),
    "HTML_COMMENT_PADDING": (html_mail(html_page("<p>Hello there</p><!-- " + "lorem ipsum " * 40 + "-->")),
                             page("<!-- layout table -->")),
    "HTML_TEXT_PART_EMPTY": (html_mail(html_page(LONG_TEXT), text=" "), html_mail(html_page(LONG_TEXT),
                                                                                 text=LETTER * 3)),
    "HTML_COMMENT_IN_WORD": (page("<p>via<!-- x -->gra</p>"),
                             page("<p>text</p><!-- x --><p>more</p>")),
    "HTML_BOGUS_TAG_IN_WORD": (page("<p>mort<qzx>gage</p>"),
                               page("<p>mort<b>gage</b></p>")),
    "HTML_BIG_FONT": (html_mail(html_page('<font size="+4">' + LONG_TEXT + "</font>")),
                      html_mail(html_page('<font size="2">' + LONG_TEXT + "</font>"))),
    "HTML_META_REFRESH": (html_mail('<html><head><meta http-equiv="refresh" content="0;url=http://x.example.com/">'
                                    "</head><body>" + LONG_TEXT + "</body></html>"),
                          html_mail(html_page(LONG_TEXT))),
    "HTML_EVENT_HANDLER": (html_mail('<html><body onload="go()">' + LONG_TEXT + "</body></html>"),
                           html_mail(html_page(LONG_TEXT))),
    # --- URIs ------------------------------------------------------------------------------
    "URI_IP_HOST": (links("http://64.86.155.21/offer"), links("http://192.168.1.10/wiki")),
    "URI_SHORTENER": (links("http://tinyurl.com/abc123"), links("http://www.example.com/abc123")),
    "URI_TEXT_MISMATCH": (anchors(("http://evil.example.net/login", "www.paypal.com")),
                          anchors(("http://www.example.com/login", "www.example.com"))),
    "URI_MANY_DOMAINS": (links(*(f"http://www.site{i}.com/" for i in range(14))),
                         links(*(f"http://www.site{i}.com/" for i in range(4)))),
    "URI_USERINFO": (links("http://www.bank.com@64.86.155.21/login"), links("http://www.bank.com/login")),
    "URI_ENCODED_HOST": (links("http://%77%77%77.example.com/"), links("http://www.example.com/a%20b")),
    "URI_NUMERIC_HOST": (links("http://3405803783/offer"), links("http://www.example.com/3405803783")),
    "URI_ODD_PORT": (links("http://www.example.com:8765/x"), links("http://www.example.com:8080/x")),
    "URI_PROGRAM_DOWNLOAD": (links("http://www.example.com/setup.exe"), links("http://www.example.com/setup.pdf")),
    "URI_MAILTO_REMOVE": (page('<a href="mailto:list@example.com?subject=remove">x</a>'),
                          page('<a href="mailto:list@example.com?subject=hello">x</a>')),
    "URI_REDIRECT_PARAM": (links("http://ads.example.com/r?url=http://shop.example.net/"),
                           links("http://ads.example.com/r?id=12")),
    "URI_HYPHENATED_NAME": (links("http://best-cheap-meds-online.com/"), links("http://www.cheap-meds.com/")),
    "URI_DIGITS_HOST": (links("http://www.offer20341.com/"), links("http://www.offer.com/2034")),
    # --- attachments -----------------------------------------------------------------------
    "ATTACH_EXECUTABLE": (with_attachment("setup.exe"), with_attachment("report.pdf")),
    "ATTACH_DOUBLE_EXT": (with_attachment("invoice.pdf.exe"), with_attachment("backup.tar.gz")),
    "ATTACH_MACRO_DOC": (with_attachment("invoice.docm"), with_attachment("invoice.docx")),
    "ATTACH_DISK_IMAGE": (with_attachment("photos.iso"), with_attachment("photos.zip")),
    "ATTACH_DISGUISED_PROGRAM": (
        with_attachment("photo.jpg", b"MZ\x90\x00\x03" + b"\x00" * 200),
        with_attachment("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 200)),
    "ATTACH_NAME_PADDED": (with_attachment("document.txt                    .exe"),
                           with_attachment("document.txt")),
    "ATTACH_NAME_CLSID": (with_attachment("readme.txt.{3050F4D8-98B5-11CF-BB82-00AA00BDCE0B}"),
                          with_attachment("readme.txt")),
    "ATTACH_PROGRAM_TERSE": (with_attachment("setup.exe", text="see attached"), with_attachment("setup.exe")),
    "ATTACH_ARCHIVED_PROGRAM": (with_attachment("invoice.zip", zip_of("Invoice 0417.pdf.js")),
                                with_attachment("invoice.zip", zip_of("Invoice 0417.pdf"))),
    "ATTACH_ARCHIVED_WEB_PAGE": (with_attachment("statement.zip", zip_of("statement.html")),
                                 with_attachment("site.zip", zip_of("index.html", "style.css", "logo.png"))),
    "ATTACH_ENCRYPTED_WITH_PASSWORD": (
        with_attachment("scan.zip", zip_of("scan.pdf", encrypted=True), text=LETTER + "\nPassword: 4417\n"),
        with_attachment("scan.zip", zip_of("scan.pdf", encrypted=True),
                        text=LETTER + "\nThe password follows in a separate message.\n")),
    "ATTACH_ARCHIVE_UNLISTED": (with_attachment("invoice.zip", zip_of("Invoice 0417.pdf")[:-30]),
                                with_attachment("invoice.zip", zip_of("Invoice 0417.pdf"))),
    "ATTACH_ARCHIVE_PATH_ESCAPE": (with_attachment("invoice.zip", zip_of("../../Startup/Invoice 0417.pdf")),
                                   with_attachment("invoice.zip", zip_of("scans/../Invoice 0417.pdf"))),
    # --- combinations ----------------------------------------------------------------------
    "META_PHISH_LINK": (
        html_mail(html_page(LONG_TEXT + '<p>Please verify your account: <a href="http://64.86.155.21/">'
                            "here</a></p>"), text=LETTER * 3),
        html_mail(html_page(LONG_TEXT + '<p>Please verify your account at <a href="http://www.example.com/">'
                            "our site</a></p>"), text=LETTER * 3)),
    "META_BROKEN_DATE_ID": (header(Message_ID=None, Date="Tue, 06 Aug 2002 10:50:02"),
                            header(Message_ID=None)),
    "META_OPTOUT_SALES": (text("This message is not spam. Order now!"), text("This message is not spam.")),
    "META_BULK_HTML": (html_mail(html_page(LONG_TEXT), headers={"To": "undisclosed-recipients:;"}),
                       html_mail(html_page(LONG_TEXT))),
    "META_PICTURE_SALE": (html_mail(html_page(IMG + "<p>Click here to order now</p>")),
                          html_mail(html_page(IMG + "<p>Our new office</p>"))),
    "META_LINK_ONLY": (mail("Look at http://tinyurl.com/x today\n"),
                       mail("Look at http://www.example.com/x today\n")),
    "META_SHOUTING": (mail(LETTER.upper() * 2, subject="MAKE THIS SUMMER COUNT"), mail(LETTER.upper() * 2)),
    "META_HIGH_PRIO_HTML": (html_mail(html_page(LONG_TEXT), headers={"X-Priority": "1"}),
                            mail(headers={"X-Priority": "1"})),
    "META_DISGUISED_WORDS": (page("<p>Cheap V1AGRA</p>"), text("Cheap V1AGRA")),
    "META_HIDDEN_AND_SALES": (
        page("<p>Order now!</p>" + '<div style="display:none">' + "filler " * 20
                            + "</div>"),
        page('<div style="display:none">' + "filler " * 20 + "</div>")),
    # --- analysis facts --------------------------------------------------------------------
    "FACT_NO_HEADERS": (raw("this is not a header line\n\nbody\n"), PLAIN),
    "FACT_NO_BLANK_LINE": (raw(HEAD + "Content-Type: text/plain\nthis line starts the body\n"), PLAIN),
    "FACT_CONTINUATION_FIRST": (raw(" folded: nothing\n" + HEAD + "\nbody\n"), PLAIN),
    "FACT_HEADER_NUL": (raw(HEAD + "X-Junk: a\x00b\n\nbody\n"), PLAIN),
    "FACT_HEADER_TOO_LONG": (raw(HEAD + "X-Junk: " + "a" * 1200 + "\n\nbody\n"), PLAIN),
    "FACT_BAD_ENCODED_WORD": (subject("=?utf-8?B?***?= news"), subject("=?utf-8?B?bmV3cw==?=")),
    "FACT_MIME_MALFORMED": (mail(content_type="texthtml"), PLAIN),
    "FACT_MIME_NO_BOUNDARY": (mail("--x\n\nhello\n--x--\n", content_type="multipart/mixed"), PLAIN),
    "FACT_BOUNDARY_NOT_FOUND": (mail("hello\n", content_type='multipart/mixed; boundary="zz"'), PLAIN),
    "FACT_BOUNDARY_UNCLOSED": (mail("--zz\nContent-Type: text/plain\n\nhello\n",
                                    content_type='multipart/mixed; boundary="zz"'),
                               mail("--zz\nContent-Type: text/plain\n\nhello\n--zz--\n",
                                    content_type='multipart/mixed; boundary="zz"')),
    "FACT_TOO_MANY_PARTS": (raw(HEAD + _many_parts(260)), raw(HEAD + _many_parts(3))),
    "FACT_TOO_DEEP": (raw(HEAD + _nested(40)), raw(HEAD + _nested(3))),
    "FACT_BAD_CTE": (mail(transfer_encoding="x-rot13"), PLAIN),
    "FACT_BAD_BASE64": (raw(HEAD + "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
                            "aGVsbG8g!!d29ybGQ=*\n"), mail(transfer_encoding="base64", charset="utf-8")),
    "FACT_BAD_QP": (raw(HEAD + "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
                         "price =ZZ today\n"), PLAIN),
    "FACT_BASE64_PLAIN_TEXT": (mail(transfer_encoding="base64"),
                               mail("Grüße aus Köln, " + LETTER, transfer_encoding="base64")),
    "FACT_BODY_NUL": (mail("hello\x00world\n" + LETTER), PLAIN),
    "FACT_CHARSET_UNKNOWN": (mail("Hall\u00f6chen " + LETTER, content_type="text/plain; charset=x-unheard-of",
                                  charset="latin-1"), PLAIN),
    "FACT_CHARSET_WRONG": (koi8("text/plain; charset=utf-8"),
                           koi8("text/plain; charset=koi8-r")),
    "FACT_CHARSET_MISSING": (koi8("text/plain"),
                             koi8("text/plain; charset=koi8-r")),
    "FACT_HTML_MALFORMED": (html_mail("<html><body>" + LONG_TEXT + "<p>end <a href="),
                            html_mail(html_page(LONG_TEXT))),
}
