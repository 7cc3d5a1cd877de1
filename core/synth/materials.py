"""Materials and their X-ray attenuation at the simulator's two effective energies.

A material is an effective atomic number and a density; its mass attenuation follows the two-term
model of :mod:`xadt.colour`, which also renders dual-energy scans in false colour.
"""

from __future__ import annotations

from dataclasses import dataclass

from xadt.colour import E_HIGH, E_LOW, mass_attenuation


@dataclass(frozen=True)
class Material:
    """A homogeneous material: effective atomic number ``z`` and density ``rho`` (g/cm³)."""

    name: str
    z: float
    rho: float

    @property
    def mu(self) -> tuple[float, float]:
        """Linear attenuation coefficients (low, high) in 1/mm."""
        return (
            float(mass_attenuation(self.z, E_LOW)) * self.rho / 10.0,
            float(mass_attenuation(self.z, E_HIGH)) * self.rho / 10.0,
        )

    def with_density(self, rho: float) -> Material:
        """The same material at another (e.g. packing) density."""
        return Material(self.name, self.z, rho)


def _m(name: str, z: float, rho: float) -> Material:
    return Material(name, z, rho)


MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        # organics (Z_eff < 10)
        _m("cardboard", 7.0, 0.13),  # corrugated: paper walls with air flutes
        _m("paper", 7.6, 0.9),  # cellulose with mineral filler
        _m("cotton", 6.8, 0.35),  # folded fabric, fibres packed with air
        _m("wool", 6.9, 0.25),
        _m("denim", 6.8, 0.5),
        _m("leather", 6.9, 0.9),
        _m("rubber", 6.2, 1.1),
        _m("foam", 6.0, 0.03),
        _m("polyethylene", 5.5, 0.92),
        _m("bubble-wrap", 5.5, 0.02),
        _m("plastic", 6.3, 1.05),  # ABS / polystyrene
        _m("pet", 6.6, 1.38),
        _m("polycarbonate", 6.5, 1.2),
        _m("nylon", 6.1, 1.14),
        _m("gf-nylon", 7.4, 1.45),  # glass-filled nylon: pistol frames
        _m("powder", 7.5, 0.95),  # propellant grains in a cartridge or pipe
        _m("wood", 6.6, 0.65),
        _m("water", 7.4, 1.0),
        _m("shampoo", 7.2, 1.03),
        _m("oil", 6.0, 0.92),
        _m("cream", 7.0, 0.98),
        _m("food", 7.2, 0.8),
        _m("chocolate", 6.7, 1.3),
        _m("sugar", 7.0, 0.85),
        _m("wax", 5.6, 0.9),
        _m("explosive", 7.3, 1.65),  # dense organic block (nitrogen- and oxygen-rich)
        # inorganic (10–18)
        _m("fr4", 11.0, 1.85),  # circuit board: glass fibre in epoxy
        _m("glass", 12.0, 2.5),
        _m("ceramic", 12.5, 2.3),
        _m("porcelain", 12.8, 2.4),
        _m("aluminium", 13.0, 2.7),
        _m("silicon", 14.0, 2.33),
        _m("pvc", 14.5, 1.4),  # chlorine lifts the Z of cable insulation and toys
        _m("salt", 15.0, 1.2),
        _m("battery-li", 16.5, 2.6),  # lithium-ion pouch: Li, C, Al, Cu, Co layers
        # metals (> 18)
        _m("steel", 26.0, 7.85),
        _m("stainless", 25.8, 7.9),
        _m("iron", 26.0, 7.2),  # cast iron
        _m("ferrite", 23.0, 4.8),
        _m("battery-alk", 24.0, 3.0),  # alkaline cell: steel can, zinc, MnO2
        _m("nickel", 28.0, 8.9),
        _m("copper", 29.0, 8.96),
        _m("brass", 29.5, 8.5),
        _m("zinc", 30.0, 7.1),
        _m("zirconia", 35.0, 6.0),  # ceramic knife blades (ZrO2)
        _m("tin", 50.0, 7.3),
        _m("tungsten", 74.0, 19.3),
        _m("lead", 82.0, 11.3),
    )
}
"""Named materials of the catalogue."""
