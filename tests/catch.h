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

#include <string>

// Substring check that reads the same on Catch2 v2 and v3 (their string matchers differ); the
// full message is printed when it fails.
#define CHECK_CONTAINS(text, part)                                 \
    do {                                                           \
        const std::string check_text_ = (text);                    \
        const std::string check_part_ = (part);                    \
        INFO("message: " << check_text_);                          \
        CHECK(check_text_.find(check_part_) != std::string::npos); \
    } while (false)
