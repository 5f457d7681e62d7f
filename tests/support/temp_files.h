// Temporary directories and file writes for tests that drive lbkit-file.

#ifndef LBKIT_TESTS_SUPPORT_TEMP_FILES_H_
#define LBKIT_TESTS_SUPPORT_TEMP_FILES_H_

#include <stdio.h>
#include <stdlib.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace lbkit::testing {

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/lbkit-test-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Kubernetes-style: write a new file beside it, rename over it.
inline void WriteAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp, std::ios::trunc) << content;
  ASSERT_EQ(rename(tmp.c_str(), path.c_str()), 0);
}

}  // namespace lbkit::testing

#endif  // LBKIT_TESTS_SUPPORT_TEMP_FILES_H_
