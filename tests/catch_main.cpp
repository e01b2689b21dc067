// Catch2 v2 main, compiled once into its own object library (it alone takes ~26 s to build).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
