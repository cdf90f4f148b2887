"""The seeded playbooks (対応マニュアル), one per incident kind, and the
reply template for customers during a system trouble. Seed 000 asks what a
manual holds: the signs, the internal contact flow, the customer templates
and the switch to other channels (own site, other malls, LINE); seed 001
gives the 30-minute triage target; the breach playbook carries the APPI
deadlines (quick report within 3–5 days, aimed at 3; final report within
30 days, 60 for a malicious leak). Japanese data, not UI strings.

Existing rows (found by kind, template by name) are left as they are:
staff may have edited them."""

from django.db import migrations

HOUR = 60
DAY = 24 * HOUR

OUTAGE_TEMPLATE = "システム障害のお詫び（復旧見込み）"
DELAY_TEMPLATE = "配送遅延のお詫び"  # seeded by tickets (tickets.reply_templates)

SIGNATURE = (
    "今後とも{{ shop.name }}をよろしくお願い申し上げます。\n\n"
    "――――――――――――――――――――\n"
    "{{ shop.name }} カスタマーサポート\n"
    "{{ shop.company }}\n"
    "TEL: {{ shop.contact_phone }}\n"
    "E-mail: {{ shop.contact_email }}\n"
    "{{ shop.url }}\n"
    "――――――――――――――――――――\n"
)
OUTAGE_BODY = (
    "{{ customer.name }}様\n\n"
    "いつも{{ shop.name }}をご利用いただき、誠にありがとうございます。\n\n"
    "現在、{{ inquiry.channel_name }}でシステム障害が発生しており、"
    "ご注文・お問い合わせの一部がご利用いただけない状態となっております。\n"
    "ご不便とご心配をおかけしておりますことを、深くお詫び申し上げます。\n\n"
    "　復旧見込み: {{ extra.recovery_eta }}\n\n"
    "復旧までの間は、下記でもご注文・お問い合わせを承っております。\n"
    "　・公式オンラインストア: {{ shop.url }}\n"
    "　・お電話: {{ shop.contact_phone }}\n"
    "　・メール: {{ shop.contact_email }}\n\n"
    "復旧いたしましたら、改めてご連絡いたします。\n"
    "このたびはご迷惑をおかけし、誠に申し訳ございません。\n\n" + SIGNATURE
)

TRIAGE = (
    "状況確認（影響範囲の把握）",
    "発生から30分以内に、何が止まっているか（閲覧・カート・決済・受注・出荷）、"
    "いつからか、どのお客様・注文に影響するかを確認し、この障害の経過に書く。",
    "manager",
    30,
)
SHARE = (
    "社内への共有",
    "店長・サポート・マーケティング担当の全員に、障害の内容と復旧見込みを伝える"
    "（窓口に登録すると全員の管理画面にお知らせが出る）。以後、分かったことは経過に追記する。",
    "manager",
    30,
)
LINK_AND_REPLY = (
    "問い合わせの関連付けと一次返信",
    "影響のある販路から届いた問い合わせをこの障害に「まとめて関連付ける」。"
    "返信テンプレート「システム障害のお詫び（復旧見込み）」で、具体的な復旧見込み日時を添えて返信する。",
    "agent",
    60,
)
REVIEW = (
    "振り返り（原因と再発防止策）",
    "原因、影響（件数は窓口が集計）、対応の良かった点・悪かった点を話し合い、"
    "根本原因と再発防止策を書いて障害を完了する。",
    "manager",
    None,
)

# kind -> (name, signs, contact flow, steps); a step: (title, how, who,
# target minutes, malicious target minutes, reply template name)
PLAYBOOKS = {
    "mall_outage": (
        "モール障害（大型セール中を含む）",
        "・RMS／セラーセントラル／ストアクリエイターにログインできない、または表示が極端に遅い\n"
        "・商品ページやカートがエラーになる、注文通知メールが途絶える\n"
        "・「買えない」「カートに入らない」という問い合わせやSNSの投稿が急に増える\n"
        "・モールの障害情報ページ、出店者向けのお知らせに告知が出る",
        "気づいた人 → 当日の責任者（店長）へ電話またはLINEで即連絡 → 店長が窓口に障害を登録 "
        "→ マーケティング担当が代替販路への誘導を準備 → 以後30分ごとに経過を更新。"
        "外部への発信（一斉送信・SNS）は店長が判断する。",
        [
            (*TRIAGE, None, ""),
            (*SHARE, None, ""),
            (*LINK_AND_REPLY, None, OUTAGE_TEMPLATE),
            (
                "代替販路への切り替え",
                "自社サイト・他のモール・LINE公式アカウントで、止まったモールと同じセール条件を用意する"
                "（クーポン・価格・送料）。在庫連携が追いつくか確認する。",
                "marketer",
                60,
                None,
                "",
            ),
            (
                "お客様への案内（緊急一斉送信とSNS）",
                "配信に同意しているお客様へ、使える販路（自社サイト・他モール・LINE）を緊急一斉送信で案内する。"
                "X・Instagram には障害ページの告知文をそのまま投稿する。",
                "manager",
                90,
                None,
                "",
            ),
            (
                "復旧の確認と注文の点検",
                "復旧後、障害中の注文の取り込み漏れ・重複・決済エラーを確認し、"
                "出荷が遅れるお客様には具体的なお届け予定日を連絡する。",
                "agent",
                None,
                None,
                "",
            ),
            (*REVIEW, None, ""),
        ],
    ),
    "own_site_outage": (
        "自社サイト障害",
        "・サイトが表示されない、決済や会員ログインがエラーになる\n"
        "・自社サイトからの注文が途絶える\n"
        "・「サイトが見られない」という問い合わせが続く",
        "気づいた人 → 店長へ即連絡 → 店長が窓口に障害を登録し、制作会社・サーバー会社・決済代行会社へ連絡 "
        "→ 以後30分ごとに経過を更新。",
        [
            (*TRIAGE, None, ""),
            (
                "制作会社・サーバー会社・決済代行会社への連絡",
                "原因と復旧見込みを問い合わせ、回答を経過に書く。",
                "manager",
                30,
                None,
                "",
            ),
            (*LINK_AND_REPLY, None, OUTAGE_TEMPLATE),
            (
                "モール店舗・LINEへの誘導",
                "楽天市場・Amazon・Yahoo!ショッピングの店舗とLINE公式アカウントで購入できることを案内する。",
                "marketer",
                60,
                None,
                "",
            ),
            (
                "復旧の確認と注文データの点検",
                "障害中の注文・会員登録・決済のデータに欠けや重複がないか確認する。",
                "agent",
                None,
                None,
                "",
            ),
            (*REVIEW, None, ""),
        ],
    ),
    "system_failure": (
        "システム障害（受注・在庫・決済・メール配信など）",
        "・受注管理や在庫連携が止まる、在庫数がずれる\n"
        "・決済・メール配信でエラーが続く\n"
        "・社内で同じ不具合の報告が重なる",
        "気づいた人 → 店長へ即連絡 → 店長が窓口に障害を登録し、システムのベンダーへ連絡 "
        "→ 以後30分ごとに経過を更新。",
        [
            (*TRIAGE, None, ""),
            (
                "ベンダーへの連絡と復旧見込みの確認",
                "ベンダーに原因と復旧見込みを確認し、経過に書く。見込みが出たら障害の「復旧見込み」を更新する。",
                "manager",
                60,
                None,
                "",
            ),
            (
                "影響する注文の洗い出し",
                "障害の間に受けた注文・出荷予定の注文を一覧にし、遅れや二重処理がないか確認する。",
                "agent",
                2 * HOUR,
                None,
                "",
            ),
            (*LINK_AND_REPLY, None, OUTAGE_TEMPLATE),
            (
                "影響のあるお客様への連絡",
                "影響する注文のお客様に、復旧見込みと具体的なお届け予定日を連絡する（曖昧な表現は使わない）。",
                "manager",
                4 * HOUR,
                None,
                "",
            ),
            (*REVIEW, None, ""),
        ],
    ),
    "carrier_delay": (
        "配送遅延（台風・大雪・交通障害など）",
        "・気象警報、運送会社の集荷停止・遅延のお知らせ\n"
        "・配送状況が「持戻り」「調査中」のまま動かない\n"
        "・「届かない」という問い合わせが特定の地域から増える",
        "気づいた人 → 店長・出荷担当へ連絡 → 店長が窓口に障害を登録 "
        "→ 48時間以上の遅れが見込まれる商品は販売停止を判断。",
        [
            (
                "状況確認（遅延の地域と期間）",
                "発生から30分以内に、運送会社の集荷・配達が止まっている地域と期間、再開の見込みを確認する。",
                "manager",
                30,
                None,
                "",
            ),
            (
                "影響する注文の洗い出し",
                "出荷済みで未着の注文、これから出荷する注文のうち対象地域のものを一覧にする。",
                "agent",
                60,
                None,
                "",
            ),
            (
                "販売停止の判断（48時間ルール）",
                "お届けが48時間以上遅れる見込みの商品は、販売停止を登録する（販売停止の判断基準）。",
                "manager",
                2 * HOUR,
                None,
                "",
            ),
            (
                "お客様への遅延のご連絡",
                "影響する注文のお客様に、具体的なお届け予定日を添えて連絡する"
                "（返信テンプレート「配送遅延のお詫び」）。「近日中」などの曖昧な表現は使わない。",
                "agent",
                4 * HOUR,
                None,
                DELAY_TEMPLATE,
            ),
            (
                "配達再開後の確認",
                "再開後、未着の注文が届いたかを確認し、届かないものは運送会社に調査を依頼する。",
                "agent",
                None,
                None,
                "",
            ),
            (*REVIEW, None, ""),
        ],
    ),
    "data_breach": (
        "個人情報の漏えい（個人情報保護法の報告期限つき）",
        "・お客様から「身に覚えのないメールが届いた」「他人の情報が届いた」という連絡\n"
        "・メール・荷物の誤送信、不審なログイン・アクセスの記録\n"
        "・委託先（運送会社・システム会社など）からの報告",
        "発見者 → 店長（個人情報の責任者）→ 経営者へ即連絡。"
        "社外への連絡・発表は店長の承認を受けてから。発覚の日時を正確に記録する（報告期限の起点）。",
        [
            (
                "被害拡大の防止",
                "不正アクセスされたアカウントの停止・パスワード変更、誤送信先への削除依頼など、"
                "これ以上広がらない手を打つ。",
                "manager",
                30,
                None,
                "",
            ),
            (
                "事実関係の調査",
                "漏えいした（おそれのある）項目、人数、原因、不正の目的によるものかを調べ、経過に書く。",
                "manager",
                DAY,
                None,
                "",
            ),
            (
                "個人情報保護委員会への速報",
                "発覚から3〜5日以内（目標3日）に、個人情報保護委員会へ速報を提出する（分かっている範囲で）。",
                "manager",
                3 * DAY,
                None,
                "",
            ),
            (
                "本人への通知",
                "漏えいしたおそれのあるお客様本人に、状況に応じて速やかに通知する"
                "（何が漏れたか、お客様に気をつけていただくこと、問い合わせ先）。",
                "manager",
                3 * DAY,
                None,
                "",
            ),
            (
                "専用の問い合わせ対応",
                "お問い合わせをこの障害に関連付け、決められた説明文で回答する。回答に迷うものは店長へ。",
                "agent",
                DAY,
                None,
                "",
            ),
            (
                "個人情報保護委員会への確報",
                "発覚から30日以内（不正の目的による漏えいは60日以内）に、確報を提出する。",
                "manager",
                30 * DAY,
                60 * DAY,
                "",
            ),
            (*REVIEW, None, ""),
        ],
    ),
}


def seed(apps, schema_editor):
    Playbook = apps.get_model("crisis", "Playbook")
    PlaybookStep = apps.get_model("crisis", "PlaybookStep")
    ReplyTemplate = apps.get_model("tickets", "ReplyTemplate")
    Category = apps.get_model("tickets", "Category")
    ReplyTemplate.objects.get_or_create(
        name=OUTAGE_TEMPLATE,
        defaults={
            "body": OUTAGE_BODY,
            "category": Category.objects.filter(code="system_failure").first(),
        },
    )
    templates = {t.name: t for t in ReplyTemplate.objects.all()}
    for kind, (name, signs, flow, steps) in PLAYBOOKS.items():
        playbook, created = Playbook.objects.get_or_create(
            kind=kind, defaults={"name": name, "signs": signs, "contact_flow": flow}
        )
        if not created:
            continue
        PlaybookStep.objects.bulk_create(
            PlaybookStep(
                playbook=playbook,
                position=position,
                title=title,
                description=how,
                role=role,
                target_minutes=target,
                malicious_target_minutes=malicious,
                reply_template=templates.get(template) if template else None,
            )
            for position, (title, how, role, target, malicious, template) in enumerate(
                steps, start=1
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("crisis", "0002_roles"),
        ("tickets", "0002_seed"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
