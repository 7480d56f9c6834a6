"""The law layer: OpenFisca-France on a situation table, and the law parameters production needs
(the CSS valuation). No benefit rule is written here."""
