// The one Catch2 version seam: Debian 12 ships Catch2 2.13 (single header), the GPU machine
// Catch2 v3 (split headers, separate main library). Tests include only this file.
#pragma once

#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
// v2 puts Approx in the global namespace; v3 only in Catch::.
using Catch::Approx;
#else
#include <catch2/catch.hpp>
#endif
