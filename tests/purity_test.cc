// core/ must stay sans-IO and deterministic (ARCHITECTURE.md): no Boost, SQLite, threads,
// clocks, random devices, files, sockets, environment or time(). This scans every source
// file under core/ and names each offending line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

namespace {

TEST(Purity, CoreHasNoForbiddenIncludesOrCalls) {
    const std::regex forbidden(
        R"(#\s*include\s*<(boost/|sqlite3\.h|thread>|mutex>|condition_variable>|future>|fstream>|iostream>|random>|chrono>|filesystem>|sys/socket|netinet/|arpa/|unistd\.h)|std::chrono::(system|steady|high_resolution)_clock|random_device|getenv\s*\(|\btime\s*\(\s*(nullptr|NULL|0)\s*\)|\bfopen\s*\(|\brand\s*\(|randombytes)");
    int files = 0;
    std::vector<std::string> offenders;
    for (const auto& e : std::filesystem::recursive_directory_iterator(WARREN_SOURCE_DIR "/core")) {
        if (!e.is_regular_file()) continue;
        auto ext = e.path().extension();
        if (ext != ".h" && ext != ".cc") continue;
        ++files;
        std::ifstream in(e.path());
        std::string line;
        for (int n = 1; std::getline(in, line); ++n) {
            // Comments may name what the core must not use.
            std::string code = line.substr(0, line.find("//"));
            if (std::regex_search(code, forbidden))
                offenders.push_back(e.path().string() + ":" + std::to_string(n) + ": " + line);
        }
    }
    EXPECT_GT(files, 10);
    for (const auto& o : offenders) ADD_FAILURE() << o;
}

}  // namespace

namespace {

// The facade wires the parts; no part may depend on it (docs/ARCHITECTURE.md).
TEST(Purity, NoPartIncludesTheFacade) {
    int files = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(WARREN_SOURCE_DIR "/core")) {
        if (!e.is_regular_file() || e.path().parent_path().filename() == "core") continue;
        ++files;
        std::ifstream in(e.path());
        std::string line;
        for (int n = 1; std::getline(in, line); ++n)
            if (line.find("#include \"core/server.h\"") != std::string::npos)
                ADD_FAILURE() << e.path().string() << ":" << n << " includes the facade";
    }
    EXPECT_GT(files, 20);
}

}  // namespace
