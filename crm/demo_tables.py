"""The demo's source data: names, addresses, products, consent wordings,
and the shares of customer archetypes and channels."""

from __future__ import annotations

from datetime import date

from core.choices import Channel


def _table(text: str) -> list[tuple[str, ...]]:
    return [tuple(row.split("|")) for row in text.split()]


FAMILY_NAMES = _table(
    """佐藤|サトウ|sato 鈴木|スズキ|suzuki 高橋|タカハシ|takahashi 田中|タナカ|tanaka
    伊藤|イトウ|ito 渡辺|ワタナベ|watanabe 山本|ヤマモト|yamamoto 中村|ナカムラ|nakamura
    小林|コバヤシ|kobayashi 加藤|カトウ|kato 吉田|ヨシダ|yoshida 山田|ヤマダ|yamada
    佐々木|ササキ|sasaki 山口|ヤマグチ|yamaguchi 松本|マツモト|matsumoto 井上|イノウエ|inoue
    木村|キムラ|kimura 林|ハヤシ|hayashi 斎藤|サイトウ|saito 清水|シミズ|shimizu
    山崎|ヤマザキ|yamazaki 森|モリ|mori 池田|イケダ|ikeda 橋本|ハシモト|hashimoto
    阿部|アベ|abe 石川|イシカワ|ishikawa 山下|ヤマシタ|yamashita 中島|ナカジマ|nakajima
    石井|イシイ|ishii 小川|オガワ|ogawa 前田|マエダ|maeda 岡田|オカダ|okada
    長谷川|ハセガワ|hasegawa 藤田|フジタ|fujita 後藤|ゴトウ|goto 近藤|コンドウ|kondo
    村上|ムラカミ|murakami 遠藤|エンドウ|endo 青木|アオキ|aoki 坂本|サカモト|sakamoto"""
)
GIVEN_NAMES = _table(
    """翔太|ショウタ|shota 陽菜|ヒナ|hina 蓮|レン|ren 結衣|ユイ|yui 大輝|ダイキ|daiki
    美咲|ミサキ|misaki 健太|ケンタ|kenta さくら|サクラ|sakura 拓也|タクヤ|takuya 愛|アイ|ai
    悠斗|ユウト|yuto 葵|アオイ|aoi 直樹|ナオキ|naoki 彩|アヤ|aya 大翔|ヒロト|hiroto
    芽依|メイ|mei 誠|マコト|makoto 真由美|マユミ|mayumi 和也|カズヤ|kazuya 恵子|ケイコ|keiko
    浩二|コウジ|koji 裕子|ユウコ|yuko 隆|タカシ|takashi 明美|アケミ|akemi 修|オサム|osamu
    久美子|クミコ|kumiko 博|ヒロシ|hiroshi 幸子|サチコ|sachiko 健一|ケンイチ|kenichi
    由美|ユミ|yumi 亮|リョウ|ryo 奈々|ナナ|nana 颯|ハヤテ|hayate 凛|リン|rin
    拓海|タクミ|takumi 花子|ハナコ|hanako 一郎|イチロウ|ichiro 千尋|チヒロ|chihiro
    智子|トモコ|tomoko 陸|リク|riku"""
)

# prefecture | postal code | city and town | area code | weight (≈ population)
ADDRESSES = _table(
    """北海道|060-0001|札幌市中央区北一条西|011|3 北海道|070-0031|旭川市一条通|0166|1
    青森県|030-0801|青森市新町|017|1 岩手県|020-0022|盛岡市大通|019|1
    宮城県|980-0811|仙台市青葉区一番町|022|2 秋田県|010-0001|秋田市中通|018|1
    山形県|990-0039|山形市香澄町|023|1 福島県|960-8041|福島市大町|024|1
    茨城県|310-0015|水戸市宮町|029|2 栃木県|320-0026|宇都宮市馬場通り|028|1
    群馬県|371-0023|前橋市本町|027|1 埼玉県|330-0063|さいたま市浦和区高砂|048|3
    埼玉県|330-0854|さいたま市大宮区桜木町|048|3 千葉県|260-0028|千葉市中央区新町|043|3
    千葉県|273-0005|船橋市本町|047|3 東京都|150-0001|渋谷区神宮前|03|4
    東京都|160-0022|新宿区新宿|03|4 東京都|171-0022|豊島区南池袋|03|4
    東京都|180-0004|武蔵野市吉祥寺本町|0422|3 東京都|113-0033|文京区本郷|03|3
    東京都|154-0004|世田谷区太子堂|03|4 東京都|135-0061|江東区豊洲|03|3
    神奈川県|220-0012|横浜市西区みなとみらい|045|4 神奈川県|210-0007|川崎市川崎区駅前本町|044|3
    神奈川県|251-0025|藤沢市鵠沼石上|0466|2 新潟県|950-0087|新潟市中央区東大通|025|2
    富山県|930-0003|富山市桜町|076|1 石川県|920-0962|金沢市広坂|076|1
    福井県|910-0006|福井市中央|0776|1 山梨県|400-0031|甲府市丸の内|055|1
    長野県|380-0823|長野市南千歳|026|2 岐阜県|500-8833|岐阜市神田町|058|2
    静岡県|420-0852|静岡市葵区紺屋町|054|2 静岡県|430-0933|浜松市中央区鍛冶町|053|2
    愛知県|460-0008|名古屋市中区栄|052|4 愛知県|450-0002|名古屋市中村区名駅|052|3
    三重県|514-0009|津市羽所町|059|1 滋賀県|520-0044|大津市京町|077|1
    京都府|600-8216|京都市下京区東塩小路町|075|3 大阪府|530-0001|大阪市北区梅田|06|4
    大阪府|542-0076|大阪市中央区難波|06|4 大阪府|590-0028|堺市堺区三国ヶ丘御幸通|072|2
    兵庫県|650-0021|神戸市中央区三宮町|078|3 兵庫県|662-0918|西宮市六湛寺町|0798|2
    奈良県|630-8215|奈良市東向中町|0742|1 和歌山県|640-8331|和歌山市美園町|073|1
    鳥取県|680-0831|鳥取市栄町|0857|1 島根県|690-0003|松江市朝日町|0852|1
    岡山県|700-0023|岡山市北区駅前町|086|2 広島県|730-0011|広島市中区基町|082|2
    山口県|753-0047|山口市道場門前|083|1 徳島県|770-0834|徳島市元町|088|1
    香川県|760-0019|高松市サンポート|087|1 愛媛県|790-0001|松山市一番町|089|1
    高知県|780-0841|高知市帯屋町|088|1 福岡県|810-0001|福岡市中央区天神|092|3
    福岡県|812-0012|福岡市博多区博多駅中央街|092|2 佐賀県|840-0801|佐賀市駅前中央|0952|1
    長崎県|850-0035|長崎市元船町|095|1 熊本県|860-0806|熊本市中央区花畑町|096|1
    大分県|870-0035|大分市中央町|097|1 宮崎県|880-0805|宮崎市橘通東|0985|1
    鹿児島県|892-0842|鹿児島市東千石町|099|1 沖縄県|900-0015|那覇市久茂地|098|1"""
)
BUILDINGS = ("メゾン桜", "コーポ緑が丘", "グランハイツ", "サンライズ", "パークハイム", "ハイツ若葉")
EMAIL_DOMAINS = ("example.jp", "example.ne.jp", "example.co.jp", "example.com")

# SKU | name | price (JPY, tax included) | weight
PRODUCTS = _table(
    """TEA-SENCHA-100|静岡煎茶_100g|1080|9 TEA-SENCHA-200|静岡煎茶_200g|1944|5
    TEA-GYOKURO-50|八女玉露_50g|2160|3 TEA-HOJICHA-150|加賀棒ほうじ茶_150g|972|6
    TEA-MATCHA-30|宇治抹茶_30g_缶入り|1620|4 TEA-GENMAI-200|玄米茶_200g|756|4
    TEA-WAKOCHA-TB20|和紅茶_ティーバッグ_20包|864|4 CUP-ARITA-MUG|有田焼_マグカップ_藍|2750|4
    CUP-HASAMI-YUNOMI|波佐見焼_湯呑み|1980|3 POT-TOKONAME-KYUSU|常滑焼_急須|5500|2
    POT-NANBU-KYUSU|南部鉄器_急須_0.65L|13200|1 TOWEL-IMABARI-FACE|今治タオル_フェイスタオル|1650|6
    TOWEL-IMABARI-BATH|今治タオル_バスタオル|4400|3 TENUGUI-ASANOHA|注染手ぬぐい_麻の葉|1320|3
    SWEETS-YOKAN-5|本練り羊羹_5本入り|2700|2 SNACK-SENBEI-24|草加せんべい_24枚|1944|3
    HASHI-WAKASA-PAIR|若狭塗_夫婦箸|3300|2 FUROSHIKI-CHIRIMEN|ちりめん風呂敷|2200|2"""
)
GIFTS = _table(
    """GIFT-TEA-SET-A|煎茶・玉露_贈答セット|5400|4 GIFT-TOWEL-SET|今治タオル_ギフトセット|5500|3
    GIFT-TEA-SET-S|特選_茶器と銘茶の詰め合わせ|10800|2 POT-NANBU-KYUSU|南部鉄器_急須_0.65L|13200|1
    GIFT-ARITA-PAIR|有田焼_ペアマグ_化粧箱入り|6050|2"""
)
SHIPPING_FEE = 650
FREE_SHIPPING_FROM = 5500

CONSENT_WORDINGS = (
    (date(2023, 10, 1), "privacy-2023-10"),
    (date(2024, 10, 1), "privacy-2024-10"),
    (date(2025, 4, 1), "privacy-2025-04"),
)
CLAIMANT_REASONS = {
    5: "配送遅延の件で1週間に電話・メール計6回の問い合わせ。担当者への暴言あり。"
    "以後の対応は店長に一本化する。",
    17: "商品不良を理由に全額返金に加えて補償金を強く要求。写真の提出は拒否し、"
    "レビューへの低評価投稿を示唆。",
    133: "返品期限（到着後8日）を過ぎた商品の返品・交換を繰り返し要求。"
    "案内済みの規約を確認のうえ、個別の例外対応はしない。",
}

# Lifecycle archetypes: the orders a person gets, hence the segment.
PROSPECT, NEW, REGULAR, VIP, SLEEPING = "prospect", "new", "regular", "vip", "sleeping"
ARCHETYPE_WEIGHTS = {PROSPECT: 15, NEW: 20, REGULAR: 35, VIP: 8, SLEEPING: 22}
BUYER_CHANNELS = {
    Channel.RAKUTEN: 30,
    Channel.AMAZON: 25,
    Channel.YAHOO: 15,
    Channel.OWN_SITE: 20,
    Channel.STORE: 10,
}
PROSPECT_CHANNELS = {Channel.LINE: 40, Channel.EMAIL: 30, Channel.OWN_SITE: 20, Channel.STORE: 10}
ORDER_CHANNELS = set(BUYER_CHANNELS)
# The other channels a person may also be known on, and what links the two
# records (Amazon buyers' addresses are masked: only the phone links them).
SECONDARY_CHANNELS: dict[str, tuple[tuple[str, str], ...]] = {
    Channel.RAKUTEN: (
        (Channel.OWN_SITE, "email"),
        (Channel.LINE, "email"),
        (Channel.AMAZON, "phone"),
        (Channel.YAHOO, "phone"),
    ),
    Channel.AMAZON: ((Channel.RAKUTEN, "phone"), (Channel.YAHOO, "phone")),
    Channel.YAHOO: ((Channel.OWN_SITE, "email"), (Channel.RAKUTEN, "phone")),
    Channel.OWN_SITE: ((Channel.LINE, "email"), (Channel.STORE, "phone")),
    Channel.STORE: ((Channel.LINE, "email"), (Channel.OWN_SITE, "email")),
    Channel.LINE: ((Channel.OWN_SITE, "email"),),
    Channel.EMAIL: ((Channel.OWN_SITE, "email"),),
}
MULTI_CHANNEL_SHARE = 0.10
# The first people are fixed so that even `--customers 20` shows every
# segment and a few people known on several channels.
FIXED_PEOPLE: dict[int, tuple[str, str, tuple[str, ...]]] = {
    0: (REGULAR, Channel.RAKUTEN, (Channel.OWN_SITE, Channel.LINE)),
    1: (VIP, Channel.OWN_SITE, (Channel.STORE,)),
    2: (NEW, Channel.AMAZON, ()),
    3: (SLEEPING, Channel.YAHOO, (Channel.RAKUTEN,)),
    4: (PROSPECT, Channel.LINE, ()),
    5: (REGULAR, Channel.RAKUTEN, ()),
    6: (PROSPECT, Channel.EMAIL, ()),
    7: (REGULAR, Channel.STORE, (Channel.LINE,)),
    8: (NEW, Channel.AMAZON, (Channel.RAKUTEN,)),
    9: (VIP, Channel.RAKUTEN, ()),
    17: (REGULAR, Channel.YAHOO, ()),
    133: (REGULAR, Channel.OWN_SITE, ()),
}
RAKUTEN_SHOP_ID = "338761"
YAHOO_STORE_ID = "madoguchi"
