"""Solid and hazardous waste (固废/危废): ledgers and transfer manifests in, checked rows out.

- :mod:`zwy.waste.contracts`: the staging schemas (``WASTE_LEDGER``, ``WASTE_MANIFESTS``).
- :mod:`zwy.waste.read`: read ledgers (Excel, merged headers, unit and totals rows) and
  manifests (CSV, often GB18030, or Excel); a row that cannot be read goes to quarantine
  with file, sheet, row and reason.
- :mod:`zwy.waste.reference`: the 2021 National Hazardous Waste List codes and the
  receivers' licences.
"""
