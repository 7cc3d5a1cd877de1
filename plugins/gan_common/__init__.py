"""Building blocks shared by the GAN family (``ganomaly``, ``skipganomaly``, ``dsagan``).

``networks`` holds the DCGAN encoder, decoder and discriminator of methods.md §3.3 and the
official weight initialisation; ``losses`` the adversarial and distance losses; ``detector`` the
options and the patch-detector base every GAN plugin trains through (pixels in [-1, 1], Adam per
network, the optional discriminator re-initialisation). This package registers no detector.
"""
