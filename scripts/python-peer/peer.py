#!/usr/bin/env python3
"""Python peer of `elicence run` for the food-business-permit export.

CSV -> validate -> de-duplicate -> per licence: A4 PDF (reportlab) signed PAdES B-B (pyHanko)
+ XML signed XML-DSig enveloped (signxml) -> content-addressed files + SQLite rows.
See README.md next to this file for what it does and does not do compared with elicence.
"""
import argparse
import csv
import hashlib
import io
import json
import os
import re
import sqlite3
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timezone
from pathlib import Path

from asn1crypto import pem
from cryptography.hazmat.primitives import serialization
from lxml import etree
from pyhanko.keys import load_certs_from_pemder, load_private_key_from_pemder_data
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph
from signxml import XMLSigner, methods

HERE = Path(__file__).resolve().parent
DEFAULT_KEYS = HERE.parent.parent / "fixtures" / "keys"
DEFAULT_FONT = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"

TYPE_NAME = "食品经营许可证"
TYPE_CODE = "11100000MB0143028R901"  # pipelines/catalog/food-business-permit.toml

# CSV header -> field name (pipelines/food-business-permit.toml)
COLUMNS = {
    "许可证编号": "licence_no", "经营者名称": "holder_name", "统一社会信用代码": "holder_code",
    "法定代表人": "legal_rep", "法定代表人身份证号": "legal_rep_id", "住所": "domicile",
    "经营场所": "premises", "主体业态": "business_type", "经营项目": "business_scope",
    "签发人": "signer", "发证日期": "issue_date", "有效期至": "valid_to",
    "日常监督管理机构": "supervisor", "状态": "status", "发证机关": "issuer",
}
OPTIONAL = {"domicile", "status"}
LABELS = {v: k for k, v in COLUMNS.items()}
STATUS = {"": "valid", "有效": "valid", "现势": "valid", "正常": "valid",
          "变更": "changed", "延续": "changed", "换证": "changed",
          "注销": "revoked", "吊销": "revoked", "撤销": "revoked"}
# issuer as printed -> USCC (renamed 2018: old names map to the successor's code)
ISSUERS = {
    "长春市朝阳区市场监督管理局": "11220104MB1875524M",
    "长春市朝阳区食品药品监督管理局": "11220104MB1875524M",
    "长春市南关区市场监督管理局": "11220102MB1953012R",
    "长春市南关区食品药品监督管理局": "11220102MB1953012R",
}

# ---------------------------------------------------------------- validation helpers
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def uscc_ok(code):
    """GB 32100-2015 check character."""
    if len(code) != 18 or any(c not in USCC_ALPHABET for c in code):
        return False
    s = sum(USCC_ALPHABET.index(c) * w for c, w in zip(code, USCC_WEIGHTS))
    return code[17] == USCC_ALPHABET[(31 - s % 31) % 31]


def mod37_36(s):
    """ISO/IEC 7064 MOD 37,36 check character of the GB/T 36904 identifier."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    p = 36
    for c in s:
        t = (p + alphabet.index(c)) % 36 or 36
        p = (2 * t) % 37
    return alphabet[(37 - p) % 36]


CN_DIGITS = {"〇": 0, "○": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4,
             "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
DATE_RE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
CN_DATE_RE = re.compile(r"^([〇○零一二三四五六七八九]{4})年([一二三四五六七八九十]+)月([一二三四五六七八九十]+)日$")


def _cn_small(s):  # 一..三十一
    if "十" in s:
        tens, _, ones = s.partition("十")
        return (CN_DIGITS[tens] if tens else 1) * 10 + (CN_DIGITS[ones] if ones else 0)
    return CN_DIGITS[s]


def parse_date(s):
    s = s.strip()
    m = DATE_RE.match(s)
    if m:
        return date(int(m[1]), int(m[2]), int(m[3]))
    if len(s) == 8 and s.isdigit():
        return date(int(s[:4]), int(s[4:6]), int(s[6:]))
    m = CN_DATE_RE.match(s)
    if m:
        year = int("".join(str(CN_DIGITS[c]) for c in m[1]))
        return date(year, _cn_small(m[2]), _cn_small(m[3]))
    raise ValueError(s)


def validate(rec):
    """Returns a reject reason or None; normalises rec in place."""
    for k, v in rec.items():
        rec[k] = v.strip()
    for k in COLUMNS.values():
        if k not in OPTIONAL and not rec[k]:
            return "required"
    rec["holder_code"] = rec["holder_code"].upper()
    if not uscc_ok(rec["holder_code"]):
        return "uscc_check"
    try:
        issued = parse_date(rec["issue_date"])
        valid_to = parse_date(rec["valid_to"])
    except (ValueError, KeyError):
        return "date"
    if not issued < valid_to:
        return "validity_order"
    rec["issue_date"], rec["valid_to"] = issued.isoformat(), valid_to.isoformat()
    if rec["status"] not in STATUS:
        return "status"
    rec["status"] = STATUS[rec["status"]]
    if rec["issuer"] not in ISSUERS:
        return "issuer"
    rec["issuer_code"] = ISSUERS[rec["issuer"]]
    return None


# ---------------------------------------------------------------- worker side
_W = {}  # per-process state: font, keys


def _init_worker(keys_dir, font, out_dir):
    if font == "STSong-Light":  # not embedded: the reader supplies the font
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
        _W["font"] = "STSong-Light"
    else:  # TrueType, embedded as a subset
        pdfmetrics.registerFont(TTFont("CJK", font))
        _W["font"] = "CJK"
    _W["keys"], _W["out"], _W["signers"] = Path(keys_dir), Path(out_dir), {}


def _signer(issuer_code):
    """The issuer's RSA key + chain if the key set has one, else the key set's own signer."""
    if issuer_code not in _W["signers"]:
        keys = _W["keys"]
        d = keys / "issuers" / issuer_code
        if not (d / "signer.key").exists():
            d = keys
        key_pem = (d / "signer.key").read_bytes()
        xml_key = serialization.load_pem_private_key(key_pem, password=None)
        chain = list(load_certs_from_pemder([str(d / "signer.pem")]))  # signer first, then CA
        pdf_signer = signers.SimpleSigner(
            signing_cert=chain[0], signing_key=load_private_key_from_pemder_data(key_pem, None),
            cert_registry=SimpleCertificateStore.from_certs(chain[1:]))
        chain_pem = [pem.armor("CERTIFICATE", c.dump()).decode() for c in chain]
        _W["signers"][issuer_code] = (pdf_signer, xml_key, chain_pem)
    return _W["signers"][issuer_code]


def render_pdf(rec):
    font = _W["font"]
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setTitle(f"{TYPE_NAME} {rec['licence_no']}")
    w, h = A4
    c.setFont(font, 28)
    c.drawCentredString(w / 2, h - 30 * mm, TYPE_NAME)
    label_style = ParagraphStyle("l", fontName=font, fontSize=11, leading=15)
    value_style = ParagraphStyle("v", fontName=font, fontSize=11, leading=15, wordWrap="CJK")
    y = h - 45 * mm
    for field in ("licence_no", "holder_name", "holder_code", "legal_rep", "domicile", "premises",
                  "business_type", "business_scope", "supervisor", "issuer", "signer",
                  "issue_date", "valid_to"):
        label = Paragraph(LABELS[field], label_style)
        value = Paragraph(rec[field] or "—", value_style)
        _, lh = label.wrap(40 * mm, 60 * mm)
        _, vh = value.wrap(122 * mm, 60 * mm)
        label.drawOn(c, 24 * mm, y - lh)
        value.drawOn(c, 64 * mm, y - vh)
        y -= max(lh, vh) + 3 * mm
    c.setFont(font, 9)
    c.drawString(24 * mm, 20 * mm, f"证照标识 {rec['identifier']}")
    qr = QrCodeWidget(rec["identifier"])
    x0, y0, x1, y1 = qr.getBounds()
    size = 35 * mm
    d = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    d.add(qr)
    renderPDF.draw(d, c, w - 24 * mm - size, 28 * mm)
    c.showPage()
    c.save()
    return buf.getvalue()


def sign_pdf(pdf, pdf_signer):
    meta = signers.PdfSignatureMetadata(field_name="Signature1", md_algorithm="sha256",
                                        subfilter=fields.SigSeedSubFilter.PADES)
    out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=pdf_signer)
    return out.getvalue()


def build_signed_xml(rec, key, chain):
    root = etree.Element("ELicence", nsmap={None: "urn:elicence:python-peer:1"})
    for k in ("identifier", "type_name", "type_code", "version", "status", "issuer",
              "issuer_code") + tuple(v for v in COLUMNS.values() if v not in ("status", "issuer")):
        etree.SubElement(root, k).text = rec.get(k, "")
    signer = XMLSigner(method=methods.enveloped, signature_algorithm="rsa-sha256",
                       digest_algorithm="sha256",
                       c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")
    signed = signer.sign(root, key=key, cert=chain)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def store(data, ext):
    sha = hashlib.sha256(data).hexdigest()
    d = _W["out"] / sha[:2]
    d.mkdir(exist_ok=True)
    p = d / f"{sha}.{ext}"
    if not p.exists():
        tmp = p.with_suffix(f".{ext}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.rename(p)
    return sha


def produce(rec):
    pdf_signer, xml_key, chain = _signer(rec["issuer_code"])
    pdf = sign_pdf(render_pdf(rec), pdf_signer)
    xml = build_signed_xml(rec, xml_key, chain)
    return rec, store(pdf, "pdf"), store(xml, "xml")


# ---------------------------------------------------------------- main
SCHEMA = """CREATE TABLE IF NOT EXISTS licence (
    identifier TEXT PRIMARY KEY, licence_no TEXT NOT NULL, issuer_code TEXT NOT NULL,
    version TEXT NOT NULL, status TEXT NOT NULL, fields TEXT NOT NULL,
    pdf_sha256 TEXT, xml_sha256 TEXT, loaded_at TEXT NOT NULL)"""


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True, help="content-addressed output folder")
    ap.add_argument("--db", required=True, help="SQLite database")
    ap.add_argument("--keys", default=str(DEFAULT_KEYS),
                    help="key set: ca.pem, signer.key/pem, issuers/<USCC>/signer.key/pem")
    ap.add_argument("--font", default=DEFAULT_FONT,
                    help="TrueType CJK font to embed (subset), or STSong-Light (not embedded)")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=500, help="rows per SQLite commit")
    args = ap.parse_args()
    t0 = time.perf_counter()

    # read, validate, de-duplicate
    read, rejected, duplicates, seen, valid = 0, {}, 0, set(), []
    with open(args.input, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            sys.exit(f"missing columns: {sorted(missing)}")
        for row in reader:
            read += 1
            key = tuple(row.get(h) for h in COLUMNS)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            rec = {COLUMNS[h]: (row.get(h) or "") for h in COLUMNS}
            reason = validate(rec)
            if reason:
                rejected[reason] = rejected.get(reason, 0) + 1
            else:
                valid.append(rec)

    # versions: same issuer + licence number, in issue-date order; then the identifier
    by_licence = {}
    for rec in valid:
        by_licence.setdefault((rec["issuer_code"], rec["licence_no"]), []).append(rec)
    to_sign, revoked, revocations = [], [], []
    for recs in by_licence.values():
        recs.sort(key=lambda r: r["issue_date"])
        n = 0
        for rec in recs:
            if rec["status"] == "revoked" and n:
                rec["version"] = f"{n:03d}"  # revokes the latest version: no new files
                revocations.append(rec)
                continue
            n += 1
            rec["version"] = f"{n:03d}"
            (revoked if rec["status"] == "revoked" else to_sign).append(rec)
    for rec in valid:
        serial = re.sub(r"[^0-9A-Z]", "", rec["licence_no"].upper())
        body = f"{TYPE_CODE}{rec['issuer_code']}{serial}{rec['version']}"
        rec["identifier"] = (f"1.2.156.3005.2.{TYPE_CODE}.{rec['issuer_code']}.{serial}."
                             f"{rec['version']}.{mod37_36(body)}")
        rec["type_name"], rec["type_code"] = TYPE_NAME, TYPE_CODE

    # render + sign on all cores; the parent loads the registry in batches
    Path(args.out).mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(args.db)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(SCHEMA)
    insert = "INSERT OR REPLACE INTO licence VALUES (?,?,?,?,?,?,?,?,?)"

    def row_of(rec, pdf_sha, xml_sha):
        face = {k: rec[k] for k in COLUMNS.values()}
        return (rec["identifier"], rec["licence_no"], rec["issuer_code"], rec["version"],
                rec["status"], json.dumps(face, ensure_ascii=False), pdf_sha, xml_sha,
                datetime.now(timezone.utc).isoformat())

    signed, batch = 0, []
    with ProcessPoolExecutor(args.workers, initializer=_init_worker,
                             initargs=(args.keys, args.font, args.out)) as pool:
        for rec, pdf_sha, xml_sha in pool.map(produce, to_sign, chunksize=8):
            signed += 1
            batch.append(row_of(rec, pdf_sha, xml_sha))
            if len(batch) >= args.batch:
                db.executemany(insert, batch)
                db.commit()
                batch = []
    batch += [row_of(rec, None, None) for rec in revoked]  # revoked at first sight: no files
    db.executemany(insert, batch)
    db.executemany("UPDATE licence SET status = 'revoked' WHERE identifier = ?",
                   [(rec["identifier"],) for rec in revocations])
    db.commit()
    db.close()

    wall = time.perf_counter() - t0
    print(json.dumps({
        "rows_read": read, "valid": len(valid), "rejected": sum(rejected.values()),
        "rejected_by": rejected, "duplicates": duplicates, "signed": signed,
        "revoked_no_files": len(revoked) + len(revocations), "workers": args.workers,
        "wall_s": round(wall, 3), "licences_per_s": round(signed / wall, 1) if wall else None,
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
