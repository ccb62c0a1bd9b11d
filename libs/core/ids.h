#ifndef PTD_LIBS_CORE_IDS_H_
#define PTD_LIBS_CORE_IDS_H_

#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace ptd {

// A new UUIDv7 (RFC 9562) in canonical text form: 36 lower-case characters, time-ordered — ids made later
// sort after earlier ones, also within one millisecond in one process.
std::string NewId();

// True for a canonical UUID text (any version).
bool IsValidId(std::string_view id);

// The creation time encoded in a UUIDv7 (millisecond precision); absl::InfinitePast() for anything else.
absl::Time TimeOfId(std::string_view id);

}  // namespace ptd

#endif  // PTD_LIBS_CORE_IDS_H_
