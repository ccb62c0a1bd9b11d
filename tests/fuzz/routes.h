#ifndef PTD_TESTS_FUZZ_ROUTES_H_
#define PTD_TESTS_FUZZ_ROUTES_H_

#include "services/gateway/domain/route_table.h"

namespace ptd::fuzz {

// The gateway's route table over every contract linked into the binary (built once).
const gateway::RouteTable& Routes();

}  // namespace ptd::fuzz

#endif  // PTD_TESTS_FUZZ_ROUTES_H_
