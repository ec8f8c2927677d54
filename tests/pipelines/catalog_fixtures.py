"""Small deterministic catalog CSVs for the catalog pipeline tests."""

from __future__ import annotations

from pathlib import Path

ML_HEADER = "sku,title,price,sale_price,stock,gtin,condition,category_id,pictures"
# A valid Mercado Livre row; tests replace single fields to make exactly one defect.
ML_GOOD = {
    "sku": "A1",
    "title": "Camiseta azul",
    "price": "10.50",
    "sale_price": "9.90",
    "stock": "3",
    "gtin": "7891234567895",
    "condition": "new",
    "category_id": "MLB1234",
    "pictures": "https://img.example.com/1.jpg",
}

# One Brazilian Excel export: ';', decimal comma, a quoted newline, accented headers.
BR_ROWS = (
    "SKU;Título;Preço;Estoque;EAN;Condição;Category Name\r\n"
    "B1;Café torrado;1.234,56;5;7891234567895;NEW;MLB10\r\n"
    'B2;"Açúcar\r\nrefinado";R$ 5,00;7;7891234567895;usado;MLB11\r\n'
    "B3;Feijão;12,90;2;36000291452;used;MLB12\r\n"
)


def ml_row(**changes: str) -> str:
    values = {**ML_GOOD, **changes}
    return ",".join(values[k] for k in ML_HEADER.split(","))


def write_ml(path: Path, rows: list[str], header: str = ML_HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def write_br(path: Path, *, encoding: str = "cp1252", bom: bool = False) -> Path:
    data = BR_ROWS.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path
