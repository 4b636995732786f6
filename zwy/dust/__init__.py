"""Construction-site dust (扬尘): site monitors (HJ 212, ST=39) against the nearest station.

- :mod:`zwy.dust.read`: the station's hourly ambient data in the UCI Beijing multi-site
  layout (split date columns, ``NA``), and the registry of sites (``dust_sites.csv``).
- :mod:`transforms.dust`: hourly site means with validity, site minus station PM10.
"""
